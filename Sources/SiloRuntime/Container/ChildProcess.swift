import CSiloSystem
import Foundation
import SiloCore
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// A command run the way a shell runs one: in a process group of its own, which is the terminal's
/// foreground group while it runs (so Ctrl-C and Ctrl-Z reach it, not this process), with stdio
/// inherited. Signals sent to this process are passed on to the command's group.
///
/// Spawned with posix_spawn rather than Foundation's Process, which must not be dropped while its
/// child runs and cannot make a process group the foreground one.
public enum ChildProcess {
    /// Signals passed on to the command when this process receives them.
    public static let forwarded = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2]

    /// Runs `command` and returns its exit status, or 128 + N if signal N ended it. A signal that
    /// arrives before the command has started is passed on once it has.
    public static func run(_ command: [String], environment: [String: String]) async throws -> Int32 {
        // Plain signal handlers, installed before the command starts (a dispatch source is set up
        // asynchronously, and a signal in between would be lost).
        for number in forwarded { _ = silo_forward_signal(number) }
        let pid = try spawn(command, environment: environment)
        silo_forward_to_group(pid)
        let status = await withCheckedContinuation { (done: CheckedContinuation<Int32, Never>) in
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                done.resume(returning: status)
            }
        }
        silo_forward_to_group(0)
        if isatty(STDIN_FILENO) == 1 { _ = tcsetpgrp(STDIN_FILENO, getpgrp()) }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as functions.
        let signalled = status & 0x7F
        return signalled == 0 ? (status >> 8) & 0xFF : 128 + signalled
    }

    /// `name` found on `path` (the command's own PATH, which posix_spawnp does not search: it
    /// searches this process's), or `name` as it is when it holds a slash or is found nowhere.
    static func resolve(_ name: String, path: String?) -> String {
        guard !name.contains("/"), let path else { return name }
        for directory in path.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (directory.isEmpty ? "." : String(directory)) + "/" + name
            var info = stat()
            if stat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 { return candidate }
        }
        return name
    }

    private static func spawn(_ command: [String], environment: [String: String]) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)
        // The child starts with default signal handling, whatever this process ignores.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in forwarded + [SIGPIPE, SIGTTOU, SIGTTIN, SIGTSTP] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let arguments = CStringArray(command)
        let pairs = CStringArray(environment: environment)
        // The command gets stdio and nothing else of this process (its FUSE connections above all).
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        _ = silo_spawn_close_from(&actions, 3)
        var pid: pid_t = 0
        let program = Self.resolve(command[0], path: environment["PATH"])
        let status = arguments.withPointers { argv in
            pairs.withPointers { envp in posix_spawnp(&pid, program, &actions, &attributes, argv, envp) }
        }
        guard status == 0 else { throw SiloError(.invalidArgument, String(cString: strerror(status))) }
        // Hand the terminal to the command's group (as a shell does), if there is a terminal.
        if isatty(STDIN_FILENO) == 1 {
            signal(SIGTTOU, SIG_IGN)
            _ = tcsetpgrp(STDIN_FILENO, pid)
        }
        return pid
    }
}
