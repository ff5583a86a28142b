import CSiloSystem
import Foundation
import SiloCore

#if canImport(Glibc)
import Glibc
#endif

/// The local files open through the mount: their descriptors, and which are open for writing (a
/// file open for writing stays uncommitted until it is closed).
extension Overlay {
    /// Opens a local file for reading and writing (the kernel checked the caller's access and turns
    /// appends into writes at the end); `truncate` empties it first. An open that may write keeps
    /// `path` uncommitted until it is closed.
    func open(_ local: String, at path: VolumePath, truncate: Bool, writing: Bool) throws -> UInt64 {
        let handle = try lock.withLock { try register(local, at: path, truncate: truncate, writing: writing) }
        opened(path, truncate: truncate, writing: writing)
        return handle
    }

    /// Opens `path`'s local file if it has one (nil if not), looking it up and registering the handle
    /// in one step: a drop of committed copies (a reload) cannot come between and leave the handle on
    /// a file the path no longer has.
    func openLocal(at path: VolumePath, truncate: Bool, writing: Bool) throws -> UInt64? {
        let handle = try lock.withLock { () throws -> UInt64? in
            guard let local = lockedLocalFile(at: path) else { return nil }
            return try register(local, at: path, truncate: truncate, writing: writing)
        }
        if handle != nil { opened(path, truncate: truncate, writing: writing) }
        return handle
    }

    /// Opens `local` and records the handle. Call with the lock held.
    private func register(_ local: String, at path: VolumePath, truncate: Bool, writing: Bool) throws -> UInt64 {
        let fd = Glibc.open(local, O_RDWR | O_CLOEXEC | (truncate ? O_TRUNC : 0))
        guard fd >= 0 else { throw SiloError.local("cannot open the local file of \(path)") }
        let handle = nextHandle
        nextHandle += 1
        handles[handle] = (fd, local, writing)
        if writing { writers[local, default: 0] += 1 }
        return handle
    }

    private func opened(_ path: VolumePath, truncate: Bool, writing: Bool) {
        // Where writes may pass through unseen, an open that may write counts as a change.
        if truncate || (writing && !seesEveryWrite) { touch(path) }
    }

    /// Whether any open handle may write `local`.
    func hasWriters(_ local: String) -> Bool {
        lock.withLock { writers[local, default: 0] > 0 }
    }

    /// Whether `handle` was opened for writing.
    func isWriting(_ handle: UInt64) -> Bool {
        lock.withLock { handles[handle]?.writing == true }
    }

    /// A descriptor of the handle's local file for the kernel to pass reads and writes through to.
    func backingFile(_ handle: UInt64) -> Int32? {
        guard let fd = try? descriptor(handle) else { return nil }
        let copy = dup(fd)
        return copy >= 0 ? copy : nil
    }

    func descriptor(_ handle: UInt64) throws -> Int32 {
        guard let fd = lock.withLock({ handles[handle]?.fd }) else { throw SiloError.local("no open file \(handle)", errno: EBADF) }
        return fd
    }

    func read(_ handle: UInt64, offset: UInt64, size: Int) throws -> [UInt8] {
        let fd = try descriptor(handle)
        var buffer = [UInt8](repeating: 0, count: size)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, off_t(offset)) }
        guard count >= 0 else { throw SiloError.local("cannot read a local file") }
        buffer.removeLast(size - count)
        return buffer
    }

    func write(_ handle: UInt64, path: VolumePath, offset: UInt64, bytes: UnsafeRawBufferPointer) throws -> Int {
        // Counted as under way until the item records it, so that no refresh in place overwrites it.
        guard let open = lock.withLock({ () -> (fd: Int32, local: String)? in
            guard let open = handles[handle] else { return nil }
            writesUnderWay[open.local, default: 0] += 1
            return (open.fd, open.local)
        }) else { throw SiloError.local("no open file \(handle)", errno: EBADF) }
        defer {
            lock.withLock {
                writesUnderWay[open.local, default: 1] -= 1
                if writesUnderWay[open.local] == 0 { writesUnderWay[open.local] = nil }
            }
        }
        let count = pwrite(open.fd, bytes.baseAddress, bytes.count, off_t(offset))
        guard count >= 0 else { throw SiloError.local("cannot write the local file of \(path)") }
        touch(path)
        return count
    }

    func fsync(_ handle: UInt64) throws {
        guard Glibc.fsync(try descriptor(handle)) == 0 else { throw SiloError.local("cannot sync a local file") }
    }

    /// Closes the handle; the last writer's close of `path` counts as a change, since what it wrote
    /// may have passed through unseen.
    func close(_ handle: UInt64, at path: VolumePath?) {
        guard let open = lock.withLock({ handles.removeValue(forKey: handle) }) else { return }
        Glibc.close(open.fd)
        guard open.writing else { return }
        lock.withLock {
            writers[open.local, default: 1] -= 1
            if writers[open.local] == 0 { writers[open.local] = nil }
        }
        // Written through one name of a linked file, it changed under all: the name closed carries it.
        if !seesEveryWrite, let path, localFile(at: path) == open.local { touch(path) }
    }

    /// The modification time of a local file, as committed.
    func modificationTime(of local: String) -> Int64? {
        var info = stat()
        return stat(local, &info) == 0 ? Self.mtime(info) : nil
    }
}
