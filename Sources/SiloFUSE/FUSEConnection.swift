import CSiloFUSE
import Foundation

/// A file system served over a transport: one request thread per queue the transport opens, each
/// handing what it reads to one ``FUSEDispatcher``; and the notifications the file system sends.
public final class FUSEConnection: @unchecked Sendable {
    public let dispatcher: FUSEDispatcher
    public let transport: any FUSETransport
    private let lock = NSLock()
    private var threads = 0
    private let finished = DispatchGroup()

    public init(fileSystem: any FUSEFileSystem, transport: any FUSETransport, options: FUSEDispatcher.Options = .init()) {
        self.transport = transport
        self.dispatcher = FUSEDispatcher(fileSystem: fileSystem, transport: transport, options: options)
    }

    /// Starts up to `count` request threads (as many as the transport has queues) and returns.
    public func start(threads count: Int) throws {
        let queues = try transport.openQueues(wanted: count)
        lock.withLock { threads += queues.count }
        for queue in queues {
            finished.enter()
            let thread = Thread { [self] in
                while queue.receive({ dispatcher.dispatch($0, $1) }) {}
                finished.leave()
            }
            thread.name = "silo-fuse"
            thread.start()
        }
    }

    /// Blocks until every request thread has stopped (the connection ended, or ``stop()``).
    public func wait() {
        finished.wait()
    }

    /// Stops the request threads, then answers every request still waiting (EINTR), so no reply is
    /// sent after the transport closes.
    public func stop() {
        transport.shutDown()
        finished.wait()
        // Only file systems that answer later (lock waits) have anything to cancel; the rest need no
        // task, so stopping from any thread never waits for the shared pool.
        guard dispatcher.pendingRequests > 0 else { return }
        let answered = DispatchSemaphore(value: 0)
        Task { [dispatcher] in
            await dispatcher.cancelPending()
            answered.signal()
        }
        answered.wait()
    }

    // MARK: Notifications

    /// Tells the kernel to forget what it cached of `node`: attributes and file pages.
    public func invalidate(node: UInt64) {
        var out = fuse_notify_inval_inode_out()
        out.ino = node
        out.off = 0
        out.len = -1
        withUnsafeBytes(of: out) { transport.notify(FUSE_NOTIFY_INVAL_INODE.rawValue, $0) }
    }

    /// Tells the kernel to forget the name `name` in directory `parent` (it looks it up again).
    public func invalidate(entry name: String, in parent: UInt64) {
        var out = fuse_notify_inval_entry_out()
        out.parent = parent
        out.namelen = UInt32(name.utf8.count)
        let payload = withUnsafeBytes(of: out) { Array($0) } + Array(name.utf8) + [0]
        payload.withUnsafeBytes { transport.notify(FUSE_NOTIFY_INVAL_ENTRY.rawValue, $0) }
    }
}
