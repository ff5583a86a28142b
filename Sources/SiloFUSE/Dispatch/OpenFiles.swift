import Foundation

/// Files open through a session, by the handle the kernel holds for each, and the passthrough
/// backing ids in use.
///
/// The kernel lets the opens of one inode at a time either all pass through, to one backing file, or
/// all be served by the file system; it fails an open that breaks this (EIO). So a node with opens
/// the file system serves gets no passthrough, and a node with passthrough opens keeps the backing
/// id of its first one until its last is released; an open of it that would need another file, or
/// none, is refused as busy. Releases reach the session after the kernel has let the file go (and
/// may be answered on another thread after a later open), so the counts here may run behind the
/// kernel's, never ahead: an open that finds its node busy first waits a moment for releases.
final class OpenFiles: @unchecked Sendable {
    struct File {
        /// The file system's own handle for the open.
        var handle: UInt64
        var node: UInt64
        var passthrough: Bool
    }

    private struct Backing {
        var id: Int32
        var opens: Int
        /// The backing file's identity, to tell whether a later open offers the same file.
        var file: (device: UInt64, inode: UInt64)
    }

    enum Decision: Equatable {
        case served(handle: UInt64)
        case passthrough(handle: UInt64, backing: Int32)
        /// The node passes through to another file now; the open must fail (ETXTBSY).
        case busy
    }

    private let lock = NSCondition()
    /// How long an open waits for a busy node's releases to arrive before it is refused.
    static let releaseWait: TimeInterval = 1
    private var next: UInt64 = 1
    private var files: [UInt64: File] = [:]
    private var backings: [UInt64: Backing] = [:]
    private var served: [UInt64: Int] = [:]
    private var totals = (passedThrough: 0, served: 0)

    /// Records an open of `node` and decides how the kernel is to do its I/O. `backingFile` (closed
    /// here) is registered with `register` unless the node already passes through to that same file;
    /// `register` answers nil when passthrough is not possible. A read-only open that comes with no
    /// backing file (its copy was evicted since, say) shares the node's current one: a node's bytes
    /// change only through writes to a local file, which always comes as the backing file.
    func open(node: UInt64, handle: UInt64, backingFile: Int32?, readOnly: Bool, register: (Int32) -> Int32?) -> Decision {
        defer { if let backingFile { close(backingFile) } }
        var identity: (device: UInt64, inode: UInt64)?
        if let backingFile {
            var info = stat()
            if fstat(backingFile, &info) == 0 { identity = (UInt64(info.st_dev), UInt64(info.st_ino)) }
        }
        lock.lock()
        defer { lock.unlock() }
        let deadline = Date(timeIntervalSinceNow: Self.releaseWait)
        while let existing = backings[node], identity.map({ $0 != existing.file }) ?? !readOnly {
            guard lock.wait(until: deadline) else { return .busy }
        }
        var backing: Int32?
        if let existing = backings[node] {
            backings[node]!.opens += 1
            backing = existing.id
        } else if let backingFile, let identity, served[node, default: 0] == 0, let id = register(backingFile) {
            backings[node] = Backing(id: id, opens: 1, file: identity)
            backing = id
        }
        let kernelHandle = next
        next += 1
        files[kernelHandle] = File(handle: handle, node: node, passthrough: backing != nil)
        guard let backing else {
            served[node, default: 0] += 1
            totals.served += 1
            return .served(handle: kernelHandle)
        }
        totals.passedThrough += 1
        return .passthrough(handle: kernelHandle, backing: backing)
    }

    /// The file system's handle for the kernel's `handle`.
    func handle(_ kernelHandle: UInt64) -> UInt64? {
        lock.withLock { files[kernelHandle]?.handle }
    }

    /// Forgets the open; calls `unregister` with a backing id its node no longer uses.
    func release(_ kernelHandle: UInt64, unregister: (Int32) -> Void) -> File? {
        lock.withLock {
            guard let file = files.removeValue(forKey: kernelHandle) else { return nil }
            if file.passthrough, var backing = backings[file.node] {
                backing.opens -= 1
                if backing.opens > 0 {
                    backings[file.node] = backing
                } else {
                    backings[file.node] = nil
                    unregister(backing.id)
                    lock.broadcast()
                }
            } else if !file.passthrough {
                served[file.node, default: 1] -= 1
                if served[file.node] == 0 { served[file.node] = nil }
            }
            return file
        }
    }

    /// How many opens pass through now.
    var passthroughOpens: Int {
        lock.withLock { backings.values.reduce(0) { $0 + $1.opens } }
    }

    /// Opens of files so far: passed through, and served by the file system.
    var openCounts: (passedThrough: Int, served: Int) {
        lock.withLock { totals }
    }
}
