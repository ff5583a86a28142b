import CSiloFUSE
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The classic transport: requests are read from, and replies written to, `/dev/fuse` descriptors of
/// one connection. Each queue reads from a clone of the connection, so several threads take requests
/// at once; where the connection cannot be cloned (without root, /dev/fuse may not open) there is one.
public final class FUSEDeviceTransport: FUSETransport, @unchecked Sendable {
    /// The connection's descriptor, as mounting returned it.
    public let device: Int32
    private let requestCapacity: Int
    private let lock = NSLock()
    /// Written to at shutdown: wakes every queue's reader out of its wait for the next request.
    private var wakeup: (read: Int32, write: Int32) = (-1, -1)
    private var clones: [Int32] = []
    private var open = true

    /// `maxWrite` is the largest write the connection agreed to: a request buffer holds one and its
    /// header.
    public init(device: Int32, maxWrite: Int) {
        self.device = device
        self.requestCapacity = maxWrite + 64 * 1024
    }

    public func openQueues(wanted: Int) throws -> [any FUSERequestQueue] {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw FUSEError(errno) }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        var descriptors = [device]
        for _ in 1..<max(1, wanted) {
            let clone = Glibc.open("/dev/fuse", O_RDWR | O_CLOEXEC)
            guard clone >= 0, silo_fuse_clone(clone, device) == 0 else {
                if clone >= 0 { Glibc.close(clone) }
                break
            }
            descriptors.append(clone)
        }
        lock.withLock {
            wakeup = (ends[0], ends[1])
            clones = Array(descriptors.dropFirst())
        }
        return descriptors.map { fd in
            // Non-blocking: several threads poll the same queue of requests, and one that finds it
            // readable may lose the request to another; a blocking read would then sit in the kernel,
            // deaf to the wake-up of a shutdown, until some later request came.
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            return Queue(fd: fd, wakeup: ends[0], capacity: requestCapacity)
        }
    }

    /// Wakes the readers and closes every descriptor of the connection: the kernel aborts a
    /// connection whose last descriptor closes, so files still open on a detached mount fail from
    /// then on (ENOTCONN). Call it once the queues' threads are told to stop; ``close()`` ends the rest.
    public func shutDown() {
        let write = lock.withLock { wakeup.write }
        if write >= 0 { _ = Glibc.write(write, "x", 1) }
    }

    /// Closes the connection's descriptors, once no thread reads them any more.
    public func close() {
        let (descriptors, pipeEnds) = lock.withLock {
            defer {
                open = false
                clones = []
                wakeup = (-1, -1)
            }
            return (open ? clones + [device] : [], [wakeup.read, wakeup.write])
        }
        for fd in descriptors + pipeEnds where fd >= 0 { Glibc.close(fd) }
    }

    public func notify(_ code: UInt32, _ payload: UnsafeRawBufferPointer) {
        let fd = lock.withLock { open ? device : -1 }
        guard fd >= 0 else { return }
        // The kernel answers ENOENT for what it does not hold, which is nothing to act on.
        Self.write(fd, unique: 0, error: Int32(code), payload)
    }

    public func openBacking(_ descriptor: Int32) -> Int32? {
        let id = silo_fuse_backing_open(device, descriptor)
        return id > 0 ? id : nil
    }

    public func closeBacking(_ id: Int32) {
        _ = silo_fuse_backing_close(device, id)
    }

    /// Writes one message: the out header, then the payload, in one writev.
    static func write(_ fd: Int32, unique: UInt64, error: Int32, _ payload: UnsafeRawBufferPointer) {
        var header = fuse_out_header()
        header.unique = unique
        header.error = error
        header.len = UInt32(MemoryLayout<fuse_out_header>.size + payload.count)
        withUnsafeMutableBytes(of: &header) { head in
            var parts = [
                iovec(iov_base: head.baseAddress, iov_len: head.count),
                iovec(iov_base: UnsafeMutableRawPointer(mutating: payload.baseAddress), iov_len: payload.count),
            ]
            // A reply the kernel no longer waits for (its request was interrupted) fails with ENOENT;
            // nothing is to be done about it.
            _ = writev(fd, &parts, payload.count == 0 ? 1 : 2)
        }
    }

    /// One descriptor of the connection and the buffer its thread reads requests into.
    final class Queue: FUSERequestQueue, @unchecked Sendable {
        let fd: Int32
        let wakeup: Int32
        private var buffer: [UInt8]

        init(fd: Int32, wakeup: Int32, capacity: Int) {
            self.fd = fd
            self.wakeup = wakeup
            self.buffer = [UInt8](repeating: 0, count: capacity)
        }

        func receive(_ handle: (FUSERequest, any FUSEReplySlot) -> Void) -> Bool {
            var waits = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeup, events: Int16(POLLIN), revents: 0)]
            while true {
                guard poll(&waits, 2, -1) >= 0 || errno == EINTR else { return false }
                if waits[1].revents != 0 { return false }  // shutting down
                if waits[0].revents & Int16(POLLIN) == 0 {
                    if waits[0].revents != 0 { return false }  // POLLERR: the connection is gone
                    continue
                }
                let capacity = buffer.count
                let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, capacity) }
                if count < 0 {
                    switch errno {
                    case EINTR, EAGAIN, ENOENT: continue  // ENOENT: the request was interrupted before we read it
                    default: return false  // ENODEV: unmounted
                    }
                }
                return buffer.withUnsafeBytes { raw in
                    guard let request = FUSERequest(bytes: UnsafeRawBufferPointer(rebasing: raw[0..<count])) else { return false }
                    handle(request, Slot(fd: fd, unique: request.unique))
                    return true
                }
            }
        }
    }

    /// A reply to request `unique`, written to the descriptor it was read from.
    struct Slot: FUSEReplySlot {
        let fd: Int32
        let unique: UInt64

        func send(error: Int32, _ payload: UnsafeRawBufferPointer) {
            FUSEDeviceTransport.write(fd, unique: unique, error: error, payload)
        }
    }
}
