#if canImport(Glibc)
import Glibc
#endif

/// How requests reach a FUSE file system and how its replies leave: `/dev/fuse` today
/// (``FUSEDeviceTransport``), FUSE over io_uring next, memory in tests.
///
/// A transport hands out one or more queues; the connection serves each on a thread of its own. A
/// request comes with the slot its reply goes into, and the slot may be filled later, from another
/// thread (a request answered later, such as a lock wait, holds no request thread). On `/dev/fuse` the
/// slot is the descriptor and the request's id; on io_uring it is the ring entry the request arrived
/// in, whose buffer the reply is written into before the entry is committed. INIT and notifications
/// use the device in both.
public protocol FUSETransport: AnyObject, Sendable {
    /// Up to `wanted` queues to read requests from (at least one).
    func openQueues(wanted: Int) throws -> [any FUSERequestQueue]
    /// Sends a notification: a message with no request, `code` in the header's error field.
    func notify(_ code: UInt32, _ payload: UnsafeRawBufferPointer)
    /// Wakes every queue's reader and makes each ``FUSERequestQueue/receive(_:)`` return false.
    func shutDown()
    /// Registers `descriptor` as a passthrough backing file: its id, or nil with `errno` set (EPERM
    /// without CAP_SYS_ADMIN; a transport without passthrough answers ENOSYS).
    func openBacking(_ descriptor: Int32) -> Int32?
    /// Drops a backing id once no open uses it.
    func closeBacking(_ id: Int32)
}

extension FUSETransport {
    public func openBacking(_ descriptor: Int32) -> Int32? {
        errno = ENOSYS
        return nil
    }

    public func closeBacking(_ id: Int32) {}
}

/// One queue of requests, served by one thread.
public protocol FUSERequestQueue: Sendable {
    /// Waits for the next request and calls `handle` with it and its reply slot; the request's bytes
    /// are valid only during the call. Returns false once the connection has ended.
    func receive(_ handle: (FUSERequest, any FUSEReplySlot) -> Void) -> Bool
}

/// Where the reply to one request goes. Filled once, from any thread.
public protocol FUSEReplySlot: Sendable {
    /// Sends the reply: `error` 0 with `payload`, or a negative errno with nothing.
    func send(error: Int32, _ payload: UnsafeRawBufferPointer)
}
