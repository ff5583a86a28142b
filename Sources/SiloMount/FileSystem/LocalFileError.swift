import SiloCore

#if canImport(Glibc)
import Glibc
#endif

/// A system call on the mount's local files failed: the errno it set, kept so a program using the
/// mount sees the same one (ENOSPC, EBADF, …).
struct LocalFileError: Error, Sendable {
    var errno: Int32
}

extension SiloError {
    /// `what` failed with `errno` (the global one when not given).
    static func local(_ what: String, errno code: Int32 = errno) -> SiloError {
        SiloError(
            code == ENOSPC ? .noSpace : .localFile, "\(what): \(String(cString: strerror(code)))", underlying: LocalFileError(errno: code)
        )
    }
}
