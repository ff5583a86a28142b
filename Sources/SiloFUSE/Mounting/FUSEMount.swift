import CSiloFUSE
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Mounting a FUSE file system and detaching it: with mount(2) and umount2 as root, else through
/// `fusermount3` (which lets a user unmount only what they mounted).
enum FUSEMount {
    /// Mounts at `path` and returns the canonical mount point and the connection's descriptor.
    static func mount(at path: String, source: String, readOnly: Bool, allowOther: Bool) throws -> (String, Int32) {
        guard let mountPoint = MountTable.canonical(path) else { throw FUSEError(errno) }
        if geteuid() == 0 {
            return (mountPoint, try mountDirectly(at: mountPoint, source: source, readOnly: readOnly, allowOther: allowOther))
        }
        var text = "default_permissions,subtype=silo,fsname=\(source.replacingOccurrences(of: ",", with: "_"))"
        if readOnly { text += ",ro" }
        return (mountPoint, try Fusermount.mount(at: mountPoint, options: text))
    }

    private static func mountDirectly(at mountPoint: String, source: String, readOnly: Bool, allowOther: Bool) throws -> Int32 {
        let device = Glibc.open("/dev/fuse", O_RDWR | O_CLOEXEC)
        guard device >= 0 else { throw FUSEError(errno) }
        var info = stat()
        guard stat(mountPoint, &info) == 0 else {
            let code = errno
            Glibc.close(device)
            throw FUSEError(code)
        }
        var text = "fd=\(device),rootmode=\(String(info.st_mode & S_IFMT, radix: 8)),user_id=\(getuid()),group_id=\(getgid())"
        text += ",default_permissions"
        if allowOther { text += ",allow_other" }
        guard silo_fuse_mount(mountPoint, source, text, readOnly ? 1 : 0) == 0 else {
            let code = errno
            Glibc.close(device)
            throw FUSEError(code)
        }
        return device
    }

    /// Lazily unmounts the FUSE mount at `mountPoint`. Returns 0 or an errno.
    static func detach(_ mountPoint: String) -> Int32 {
        if silo_fuse_unmount(mountPoint) == 0 { return 0 }
        let code = errno
        if code == EPERM, Fusermount.unmount(mountPoint) { return 0 }
        return code
    }
}
