import CSiloSystem
import CSiloFUSE
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Mounting and unmounting without root, through Debian's fuse3 `fusermount3` (setuid root): it opens
/// /dev/fuse, mounts it where the caller may, and sends the connection back over a Unix socket
/// (`_FUSE_COMMFD`); `fusermount3 -u -z` unmounts what the same user mounted. (Its `auto_unmount`
/// is not used: it left mounts behind on this project's machines; a mount's guard process unmounts
/// through `-u -z` instead.)
enum Fusermount {
    static var path: String? {
        ["/usr/bin/fusermount3", "/bin/fusermount3", "/usr/local/bin/fusermount3"].first { access($0, X_OK) == 0 }
    }

    /// Mounts at `mountPoint` and returns the connection's descriptor.
    static func mount(at mountPoint: String, options: String) throws -> Int32 {
        guard let path else {
            throw FUSEError(EPERM)  // no root and no fusermount3: nothing can mount
        }
        var ends: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0 else { throw FUSEError(errno) }
        _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
        let helper = spawn(path, ["-o", options, "--", mountPoint], passing: ends[0])
        close(ends[0])
        guard helper > 0 else {
            close(ends[1])
            throw FUSEError(EPERM)
        }
        let device = silo_receive_fd(ends[1])
        let code = device < 0 ? errno : EPERM
        close(ends[1])
        // It exits once it has sent the descriptor, or has said on standard error why it could not.
        guard wait(helper) == 0, device > 0 else {
            if device > 0 { close(device) }
            throw FUSEError(code)
        }
        return device
    }

    /// Lazily unmounts a mount this user made; true if fusermount3 did.
    @discardableResult
    static func unmount(_ mountPoint: String) -> Bool {
        guard let path else { return false }
        let helper = spawn(path, ["-u", "-z", "--", mountPoint], passing: nil)
        return helper > 0 && wait(helper) == 0
    }

    /// Starts fusermount3 with `arguments` and returns its pid (0 if it could not start). It gets this
    /// process's standard error and, as descriptor 3 named by `_FUSE_COMMFD`, `socket`; nothing else.
    private static func spawn(_ path: String, _ arguments: [String], passing socket: Int32?) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0)
        var environment = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        if let socket {
            posix_spawn_file_actions_adddup2(&actions, socket, 3)
            environment.append("_FUSE_COMMFD=3")
        }
        _ = silo_spawn_close_from(&actions, socket == nil ? 3 : 4)
        let argv = CStringArray(["fusermount3"] + arguments)
        let envp = CStringArray(environment)
        var pid: pid_t = 0
        let spawned = argv.withPointers { argv in envp.withPointers { envp in posix_spawn(&pid, path, &actions, nil, argv, envp) } }
        return spawned == 0 ? pid : 0
    }

    /// Waits for fusermount3 `pid` to exit and returns its exit status (-1 if a signal ended it).
    private static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : -1
    }
}
