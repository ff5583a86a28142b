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

    public static func open(_ path: String, flags: Int32, mode: mode_t = 0o644) throws -> Int32 {
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

    /// Reads until `buffer` is full or the file ends; returns the number of bytes read.
    public static func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, path: String) throws -> Int {
        var offset = 0
        while offset < buffer.count {
            let count = read(fd, buffer.baseAddress! + offset, buffer.count - offset)
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

    public static func fsync(_ fd: Int32, path: String) throws {
        if Glibc.fsync(fd) != 0 { throw error(errno, "could not flush \(path) to disk") }
    }

    public static func fsyncDirectory(_ path: String) throws {
        let fd = try open(path, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(fd) }
        try fsync(fd, path: path)
    }

    /// `mkdir -p`.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            if (info.st_mode & S_IFMT) == S_IFDIR { return }
            throw SiloError(.io, "\(path) exists and is not a directory")
        }
        let parent = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
        if !parent.isEmpty { try makeDirectories(parent, mode: mode) }
        if mkdir(path, mode) != 0 && errno != EEXIST { throw error(errno, "could not create directory \(path)") }
    }
}

/// A system call's errno, kept as a ``SiloError``'s underlying cause.
public struct ErrnoError: Error, Sendable, Equatable {
    public let code: Int32
}

extension SiloError {
    public var underlyingErrno: Int32? { (underlying as? ErrnoError)?.code }
}
