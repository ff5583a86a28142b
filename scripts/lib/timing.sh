# Sourced by the benchmark scripts.

# seconds COMMAND...: wall time of one run of COMMAND, in seconds.
seconds() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f\n", b - a }'
}

# best TIMES...: the smallest.
best() { printf '%s\n' "$@" | sort -g | head -1; }

# report WHAT SILO_SECONDS BASELINE_SECONDS BYTES: one line with throughput and the same-run ratio.
report() {
    awk -v what="$1" -v s="$2" -v c="$3" -v bytes="$4" \
        'BEGIN { printf "%-34s %9.4f s %9.1f MB/s   baseline %9.4f s   %6.2fx baseline time\n", what, s, (bytes > 0 ? bytes / s / 1e6 : 0), c, s / c }'
}
