# Sourced by scripts that need a running `silo serve` of their own.
#
# start_server SILO WORK: starts SILO serve over WORK/data on a free loopback port, waits until it
# listens (it prints its address; reading that line is the wait), and sets SILO_SERVER, SILO_TOKEN
# (the admin token) and server_pid. Registers a trap that stops it and removes WORK on exit.
start_server() {
    local silo=$1 line
    work_dir=$2
    server_pid=
    trap stop_server EXIT
    mkfifo "$work_dir/server-out"
    "$silo" serve --data "$work_dir/data" --listen 127.0.0.1:0 --log-level error \
        >"$work_dir/server-out" 2>"$work_dir/server.log" &
    server_pid=$!
    exec 3<"$work_dir/server-out"
    read -r line <&3
    export SILO_SERVER=${line##* }
    SILO_TOKEN=$(cat "$work_dir/data/admin-token")
    export SILO_TOKEN
}

stop_server() {
    if [[ -n ${server_pid:-} ]]; then
        kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work_dir"
}
