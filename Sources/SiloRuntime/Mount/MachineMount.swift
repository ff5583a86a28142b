import Foundation
import SiloCore
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// One mount of a shared volume per machine (per `SILO_HOME`), which every container attaching the
/// volume bind-mounts at its path: one FUSE session, so one page cache, and the kernel keeps
/// programs in different containers coherent as it keeps programs on one disk (SQLite's WAL mode,
/// whose shared memory is a mapped file, works across them). Only other machines need Silo's
/// protocol.
///
/// The mount is made by `silo mount --until-unused USERS` in the caller's mount namespace, before
/// a container makes its own (a mount made later would not show in it). Each container holds a
/// shared `flock` of the volume's users file for its life, taken before it looks for the mount; the
/// mount process waits for an exclusive one, so it unmounts once the last container has ended, and
/// a container arriving meanwhile waits for it to be gone and makes a new one. A second lock file
/// makes looking and starting one step.
public enum MachineMount {
    /// The directory the machine mounts of `home`'s shared volumes and their lock files are in, as
    /// the mount table names it (no `//`, no symlinks) once it exists.
    public static func directory(home: String) -> String { MountTable.canonical(home + "/shared") ?? home + "/shared" }

    /// Where `volume` is mounted for the containers of `home`.
    public static func mountPoint(home: String, volume: VolumeName) -> String { directory(home: home) + "/" + volume.rawValue }

    /// The file whose shared locks are the containers using `volume`'s machine mount.
    public static func usersFile(home: String, volume: VolumeName) -> String { mountPoint(home: home, volume: volume) + ".users" }

    /// Makes sure `volume` is mounted for the containers of `home` (calling `start` with the mount
    /// point and the users file when it is not), and returns a descriptor holding a shared lock of its
    /// users file: the mount stays while it is open, in this process or one it execs (the descriptor
    /// is not closed on exec; close it to let go early).
    public static func join(home: String, volume: VolumeName, start: (_ mountPoint: String, _ usersFile: String) throws -> Void) throws -> Int32 {
        guard mkdir(home + "/shared", 0o700) == 0 || errno == EEXIST else {
            throw SiloError(.localFile, "cannot create \(home)/shared: \(String(cString: strerror(errno)))")
        }
        let point = mountPoint(home: home, volume: volume)
        let starting = try locked(point + ".start", LOCK_EX)
        defer { close(starting) }
        let users = try locked(usersFile(home: home, volume: volume), LOCK_SH)
        do {
            guard mkdir(point, 0o700) == 0 || errno == EEXIST else {
                throw SiloError(.localFile, "cannot create \(point): \(String(cString: strerror(errno)))")
            }
            if !MountTable.hasSiloMount(at: point) { try start(point, usersFile(home: home, volume: volume)) }
        } catch {
            close(users)
            throw error
        }
        // Kept through exec from here: the mount process, started above, never held it.
        _ = fcntl(users, F_SETFD, 0)
        return users
    }

    /// Waits until no container uses the machine mount whose users file is `usersFile` (for the
    /// mount process), and keeps the exclusive lock until this process exits, so that a container
    /// arriving meanwhile waits for the mount to be gone.
    public static func waitUntilUnused(_ usersFile: String) throws {
        _ = try locked(usersFile, LOCK_EX)
    }

    private static func locked(_ path: String, _ operation: Int32) throws -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw SiloError(.localFile, "cannot open \(path): \(String(cString: strerror(errno)))") }
        while flock(fd, operation) != 0 {
            guard errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw SiloError(.localFile, "cannot lock \(path): \(reason)")
            }
        }
        return fd
    }
}
