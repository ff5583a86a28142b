import CSiloFUSE
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Answers FUSE requests from a ``FUSEFileSystem``: decodes each request by its opcode's entry in
/// ``operations``, calls the file system, and sends the reply into the request's slot.
///
/// Most requests are answered on the thread that read them. Those whose answer may take long (lock
/// waits) are answered later, from a task, so they hold no request thread; FUSE_INTERRUPT cancels
/// such a request, which then answers EINTR.
public final class FUSEDispatcher: @unchecked Sendable {
    public struct Options: Sendable {
        /// Largest write the kernel sends in one request, and the read size it asks for.
        public var maxWrite = 1 << 20
        /// Ask for passthrough (Linux 6.9+): opens the file system gives a backing file are then read
        /// and written by the kernel directly. It needs CAP_SYS_ADMIN; without it opens are served.
        public var passthrough = true
        public init() {}
    }

    /// The protocol version this implementation speaks: 7.40, the first with passthrough.
    static let protocolMinor: UInt32 = 40

    let fileSystem: any FUSEFileSystem
    let transport: any FUSETransport
    let options: Options
    let files = OpenFiles()
    let directories = OpenDirectories()
    let pending = PendingRequests()
    private let lock = NSLock()
    private var passthrough = false
    private var kernelMinorAgreed: UInt32 = 0
    private var bytesServed = 0

    public init(fileSystem: any FUSEFileSystem, transport: any FUSETransport, options: Options = Options()) {
        self.fileSystem = fileSystem
        self.transport = transport
        self.options = options
    }

    /// The protocol minor version agreed at INIT (0 before it).
    public var kernelMinor: UInt32 { lock.withLock { kernelMinorAgreed } }

    /// Whether opens with a backing file pass through: the kernel agreed at INIT, and registering a
    /// backing file has not been refused (it is, with EPERM, without CAP_SYS_ADMIN).
    public var passthroughEnabled: Bool { lock.withLock { passthrough } }

    /// How many opens are passed through to backing files now.
    public var passthroughOpens: Int { files.passthroughOpens }

    /// How many requests wait to be answered later now.
    public var pendingRequests: Int { pending.count }

    /// What the connection has done so far, for status reports.
    public struct Counters: Sendable, Equatable {
        /// File opens handed to the kernel with a backing file, and opens the file system served.
        public var passedThroughOpens: Int
        public var servedOpens: Int
        /// Bytes of file data the file system answered reads with (passed-through reads are not seen).
        public var bytesServed: Int
    }

    public var counters: Counters {
        let opens = files.openCounts
        return Counters(passedThroughOpens: opens.passedThrough, servedOpens: opens.served, bytesServed: lock.withLock { bytesServed })
    }

    /// Answers `request` through `slot`: now, or later for the operations that wait.
    public func dispatch(_ request: FUSERequest, _ slot: any FUSEReplySlot) {
        let reply = FUSEReply(slot: slot)
        guard let operation = Self.operation(request.opcode) else { return reply.fail(ENOSYS) }
        do {
            try operation.handle(self, request, reply)
        } catch let error as FUSEError {
            reply.fail(error.errno)
        } catch {
            reply.fail(EIO)
        }
    }

    /// Answers from a task: `body`'s value is sent with `send`; its ``FUSEError`` as that errno, a
    /// cancellation (an interrupt) as EINTR, anything else as EIO.
    func later<T: Sendable>(
        _ request: FUSERequest, _ reply: FUSEReply, _ body: @escaping @Sendable () async throws -> T,
        send: @escaping @Sendable (T, FUSEReply) -> Void
    ) {
        pending.start(request.unique) {
            do {
                let value = try await body()
                return { send(value, reply) }
            } catch let error as FUSEError {
                return { reply.fail(error.errno) }
            } catch is CancellationError {
                return { reply.fail(EINTR) }
            } catch {
                let errno = Task.isCancelled ? EINTR : EIO
                return { reply.fail(errno) }
            }
        }
    }

    /// Cancels every request waiting to be answered and waits for their replies.
    public func cancelPending() async {
        await pending.cancelAll()
    }

    // MARK: State the operations share

    func agreed(minor: UInt32, passthrough: Bool) {
        lock.withLock {
            kernelMinorAgreed = minor
            self.passthrough = passthrough
        }
    }

    func served(bytes: Int) {
        lock.withLock { bytesServed += bytes }
    }

    /// The file system's handle for a handle the kernel sent.
    func handle(_ kernelHandle: UInt64) throws -> UInt64 {
        guard let handle = files.handle(kernelHandle) else { throw FUSEError(EBADF) }
        return handle
    }

    /// The open reply for `opened`, passed through to its backing file when the connection allows.
    /// An open the kernel could not combine with the node's other opens is released and refused.
    func openOut(_ node: UInt64, _ opened: FUSEOpened, readOnly: Bool) throws -> fuse_open_out {
        var out = fuse_open_out()
        let decision = files.open(node: node, handle: opened.handle, backingFile: opened.backingFile, readOnly: readOnly) { fd in
            guard passthroughEnabled else { return nil }
            if let id = transport.openBacking(fd) { return id }
            // Refused for want of privilege (or by the kernel): serve every open from now on.
            if errno == EPERM { lock.withLock { passthrough = false } }
            return nil
        }
        switch decision {
        case .busy:
            fileSystem.release(node, handle: opened.handle)
            throw FUSEError(ETXTBSY)
        case .passthrough(let kernelHandle, let backing):
            // The kernel refuses KEEP_CACHE with passthrough: the pages are the backing file's.
            out.fh = kernelHandle
            out.open_flags |= SILO_FOPEN_PASSTHROUGH
            out.padding = UInt32(bitPattern: backing)
        case .served(let kernelHandle):
            out.fh = kernelHandle
            if opened.keepCache { out.open_flags |= UInt32(FOPEN_KEEP_CACHE) }
        }
        return out
    }
}
