import CSiloFUSE
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One mounted file system: a mount through `/dev/fuse` (``FUSEMount``) and a ``FUSEConnection``
/// serving a ``FUSEFileSystem`` over its device.
public final class FUSESession: @unchecked Sendable {
    public struct Options: Sendable {
        /// Shown in `mount` output and /proc/mounts.
        public var source = "silo"
        public var readOnly = false
        /// Let users other than the mounting one use the mount (root mounts only).
        public var allowOther = true
        /// Largest write the kernel sends in one request, and the read size it asks for.
        public var maxWrite = 1 << 20
        /// Ask for passthrough (Linux 6.9+): opens the file system gives a backing file are then read
        /// and written by the kernel directly. It needs CAP_SYS_ADMIN; without it opens are served.
        public var passthrough = true
        public init() {}
    }

    /// Where the file system is mounted: the absolute path without symlinks or repeated slashes.
    public private(set) var mountPoint: String
    let fileSystem: any FUSEFileSystem
    let options: Options
    private let lock = NSLock()
    private var connection: FUSEConnection?
    private var device: FUSEDeviceTransport?

    public init(fileSystem: any FUSEFileSystem, mountPoint: String, options: Options = Options()) {
        self.fileSystem = fileSystem
        self.mountPoint = mountPoint
        self.options = options
    }

    /// Mounts at ``mountPoint``: as root, by opening `/dev/fuse` and calling mount(2); otherwise
    /// through `fusermount3`.
    public func mount() throws {
        let (resolved, fd) = try FUSEMount.mount(at: mountPoint, source: options.source, readOnly: options.readOnly, allowOther: options.allowOther)
        mountPoint = resolved
        let device = FUSEDeviceTransport(device: fd, maxWrite: options.maxWrite)
        var dispatch = FUSEDispatcher.Options()
        dispatch.maxWrite = options.maxWrite
        dispatch.passthrough = options.passthrough
        lock.withLock {
            self.device = device
            connection = FUSEConnection(fileSystem: fileSystem, transport: device, options: dispatch)
        }
    }

    private var mounted: FUSEConnection? { lock.withLock { connection } }

    /// Starts `threads` request readers (each on its own clone of the connection) and returns. Where
    /// the connection cannot be cloned (without root, /dev/fuse may not open), one thread serves it.
    public func start(threads count: Int = 4) throws {
        guard let connection = mounted else { throw FUSEError(ENOTCONN) }
        try connection.start(threads: count)
    }

    /// Detaches the mount, ends the connection and waits for the request threads. Files still open on
    /// the mount fail from then on (ENOTCONN), as they would if the serving process died.
    public func unmount() {
        let (connection, device) = lock.withLock {
            defer {
                self.connection = nil
                self.device = nil
            }
            return (self.connection, self.device)
        }
        guard let connection, let device else { return }
        Self.detach(mountPoint)
        // A detached mount lives on while files are open on it. Stopping the request threads and
        // closing every descriptor of the connection ends it now.
        connection.stop()
        device.close()
    }

    /// Lazily unmounts the FUSE mount at `mountPoint`. Returns 0 or an errno.
    @discardableResult
    public static func detach(_ mountPoint: String) -> Int32 {
        FUSEMount.detach(mountPoint)
    }

    /// Blocks until the file system is unmounted (by ``unmount()`` or from outside).
    public func wait() {
        mounted?.wait()
    }

    /// The protocol minor version agreed at INIT (0 before it).
    public var kernelMinor: UInt32 { mounted?.dispatcher.kernelMinor ?? 0 }
    /// Whether opens with a backing file pass through (see ``FUSEDispatcher/passthroughEnabled``).
    public var passthroughEnabled: Bool { mounted?.dispatcher.passthroughEnabled ?? false }
    /// How many opens are passed through to backing files now.
    public var passthroughOpens: Int { mounted?.dispatcher.passthroughOpens ?? 0 }

    public typealias Counters = FUSEDispatcher.Counters
    /// What the session has done so far, for status reports.
    public var counters: Counters { mounted?.dispatcher.counters ?? Counters(passedThroughOpens: 0, servedOpens: 0, bytesServed: 0) }

    public func invalidate(node: UInt64) { mounted?.invalidate(node: node) }
    public func invalidate(entry name: String, in parent: UInt64) { mounted?.invalidate(entry: name, in: parent) }
}
