import CSiloSystem
import Foundation
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// A mount's companion process: it waits on a pipe whose other end only the mount process holds, and
/// when that end closes (the mount process exited, however it died) it detaches the mount if it is
/// still there. A mount process killed with SIGKILL thus leaves no "transport endpoint is not
/// connected" behind.
public enum UnmountGuard {
    /// The hidden command of this executable that runs a guard: `silo unmount-guard MOUNTPOINT`.
    public static let command = "unmount-guard"

    /// The guard's work, in the guard process: waits until standard input reaches its end, then
    /// detaches the Silo mount at `mountPoint` if one is still there.
    public static func watch(_ mountPoint: String) {
        var byte: UInt8 = 0
        // Nothing is ever written: read returns 0 when the mount process's end closes.
        while true {
            let count = read(STDIN_FILENO, &byte, 1)
            if count == 0 || (count < 0 && errno != EINTR) { break }
        }
        if MountTable.hasSiloMount(at: mountPoint) {
            FUSESession.detach(mountPoint)
        }
    }

    /// Starts a guard (this executable, run as ``command``) for the mount at `mountPoint`; keep the
    /// returned descriptor open for as long as the mount should live (it closes by itself when this
    /// process ends).
    ///
    /// Spawned with posix_spawn, not Foundation's Process: the guard outlives any object that would
    /// watch it, and nothing in this process should wait for it or hold its descriptors.
    static func start(for mountPoint: String) throws -> Int32 {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw FUSEError(errno) }
        _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, ends[0], STDIN_FILENO)
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0)
        _ = silo_spawn_close_from(&actions, 3)
        let arguments = CStringArray(["silo", command, mountPoint])
        var pid: pid_t = 0
        let status = arguments.withPointers { posix_spawn(&pid, "/proc/self/exe", &actions, nil, $0, environ) }
        close(ends[0])
        guard status == 0 else {
            close(ends[1])
            throw FUSEError(status)
        }
        return ends[1]
    }
}
