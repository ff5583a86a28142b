#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SiloCore

/// Thin, error-mapping wrappers over the POSIX calls the stores need.
public enum FileIO {
    /// An error for a failed system call: ENOSPC becomes ``SiloError/Code/noSpace``, the rest ``SiloError/Code/io``.
    public static func error(_ code: Int32, _ what: String) -> SiloError {
        let reason = String(cString: strerror(code))
        var error: SiloError
        if code == ENOSPC || code == EDQUOT {
            error = SiloError(.noSpace, "\(what): \(reason); free some space and try again (nothing was changed)")
        } else {
            error = SiloError(.io, "\(what): \(reason)")
        }
        error.underlying = ErrnoError(code: code)
        return error
    }

    public static func open(_ path: String, flags: Int32, mode: mode_t = 0o600) throws -> Int32 {
        while true {
            let fd = Glibc.open(path, flags, mode)
            if fd >= 0 { return fd }
            if errno != EINTR { throw error(errno, "could not open \(path)") }
        }
    }

    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw error(errno, "could not write \(path)")
            }
            offset += written
        }
    }

    /// Reads until `buffer` is full or the file ends; returns the number of bytes read. From the file's
    /// position, or with `pread` from byte `at` (the position is then left as it was).
    public static func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at start: Int64? = nil, path: String) throws -> Int {
        var offset = 0
        while offset < buffer.count {
            let target = buffer.baseAddress! + offset
            let wanted = buffer.count - offset
            let count = if let start { pread(fd, target, wanted, off_t(start) + off_t(offset)) } else { read(fd, target, wanted) }
            if count < 0 {
                if errno == EINTR { continue }
                throw error(errno, "could not read \(path)")
            }
            if count == 0 { break }
            offset += count
        }
        return offset
    }

    public static func readWholeFile(_ path: String) throws -> [UInt8] {
        let fd = try open(path, flags: O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw error(errno, "could not stat \(path)") }
        let size = Int(info.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        let count = try bytes.withUnsafeMutableBytes { try readFully(fd, into: $0, path: path) }
        if count < size { bytes.removeLast(size - count) }
        return bytes
    }

    /// Replaces the file at `path` with `bytes`, whole or not at all: written under a new name beside
    /// it (`O_EXCL | O_NOFOLLOW`, so a link planted there is never followed), fsynced, renamed over
    /// it, and the directory fsynced.
    public static func replaceFile(at path: String, with bytes: [UInt8], mode: mode_t = 0o600) throws {
        let temporary = path + ".new-\(getpid())"
        unlink(temporary)
        let fd = try open(temporary, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode: mode)
        do {
            defer { close(fd) }
            try bytes.withUnsafeBytes { try writeAll(fd, $0, path: temporary) }
            try fsync(fd, path: temporary)
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw error(code, "could not write \(path)")
        }
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        try fsyncDirectory(directory.isEmpty ? "/" : directory)
    }

    public static func fsync(_ fd: Int32, path: String) throws {
        if Glibc.fsync(fd) != 0 { throw error(errno, "could not flush \(path) to disk") }
    }

    public static func fsyncDirectory(_ path: String) throws {
        let fd = try open(path, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(fd) }
        try fsync(fd, path: path)
    }

    /// A directory that holds one user's data (a store, `SILO_HOME`, a content cache): made with
    /// mode 0700 where missing and tightened to 0700 where it exists, so no other local user reaches
    /// anything beneath it. One that belongs to another user is refused, not shared.
    public static func makePrivateDirectory(_ path: String) throws {
        try makeDirectories(path, mode: 0o700)
        var info = stat()
        guard stat(path, &info) == 0 else { throw error(errno, "could not read \(path)") }
        guard info.st_uid == geteuid() else {
            throw SiloError(
                .localFile,
                "\(path) belongs to another user (uid \(info.st_uid)); Silo keeps each user's data private, so choose a directory of your own"
            )
        }
        if info.st_mode & 0o077 != 0, chmod(path, 0o700) != 0 {
            throw error(errno, "could not make \(path) private (mode 0700)")
        }
    }

    /// `mkdir -p`, durably: each directory it creates is fsynced into its parent, so a file renamed
    /// into the new directory and fsynced there survives a crash with the path that leads to it.
    public static func makeDirectoriesDurably(_ path: String) throws {
        for directory in try makeDirectories(path) {
            let parent = directory.lastIndex(of: "/").map { String(directory[..<$0]) } ?? "."
            try fsyncDirectory(parent.isEmpty ? "/" : parent)
        }
    }

    /// `mkdir -p`; beneath a private directory the default mode keeps new levels private too. Returns
    /// the directories that did not exist when it looked, outermost first (whether this call or another
    /// process at the same moment made them).
    @discardableResult
    public static func makeDirectories(_ path: String, mode: mode_t = 0o700) throws -> [String] {
        var info = stat()
        if stat(path, &info) == 0 {
            if (info.st_mode & S_IFMT) == S_IFDIR { return [] }
            throw SiloError(.io, "\(path) exists and is not a directory")
        }
        let parent = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
        var made = parent.isEmpty ? [] : try makeDirectories(parent, mode: mode)
        if mkdir(path, mode) != 0 && errno != EEXIST { throw error(errno, "could not create directory \(path)") }
        made.append(path)
        return made
    }
}

/// A system call's errno, kept as a ``SiloError``'s underlying cause.
public struct ErrnoError: Error, Sendable, Equatable {
    public let code: Int32
}

extension SiloError {
    public var underlyingErrno: Int32? { (underlying as? ErrnoError)?.code }
}
