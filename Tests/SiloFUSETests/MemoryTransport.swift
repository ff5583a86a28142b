import CSiloFUSE
import Foundation
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// A transport in memory: a test sends requests as the kernel would and reads the replies, with no
/// mount and no kernel. Every queue reads the same first-in, first-out line of requests.
final class MemoryTransport: FUSETransport, @unchecked Sendable {
    struct Reply: Equatable {
        var error: Int32
        var payload: [UInt8]
    }

    private let condition = NSCondition()
    private var requests: [[UInt8]] = []
    private var replies: [UInt64: Reply] = [:]
    private var closed = false
    private(set) var notifications: [(UInt32, [UInt8])] = []
    /// Requests answered more than once: always a bug.
    private(set) var answeredTwice: [UInt64] = []

    func openQueues(wanted: Int) throws -> [any FUSERequestQueue] {
        (0..<max(1, wanted)).map { _ in Queue(transport: self) }
    }

    func shutDown() {
        condition.withLock {
            closed = true
            condition.broadcast()
        }
    }

    func notify(_ code: UInt32, _ payload: UnsafeRawBufferPointer) {
        condition.withLock { notifications.append((code, Array(payload))) }
    }

    /// Queues a request: `body` after a header naming `opcode`, `unique` and `node`.
    func send(_ opcode: UInt32, unique: UInt64, node: UInt64 = 1, _ body: [UInt8] = []) {
        condition.withLock {
            requests.append(Self.message(opcode, unique: unique, node: node, body))
            condition.broadcast()
        }
    }

    static func message(_ opcode: UInt32, unique: UInt64, node: UInt64 = 1, _ body: [UInt8] = []) -> [UInt8] {
        var header = fuse_in_header()
        header.len = UInt32(MemoryLayout<fuse_in_header>.size + body.count)
        header.opcode = opcode
        header.unique = unique
        header.nodeid = node
        return withUnsafeBytes(of: header) { Array($0) } + body
    }

    /// The reply to `unique`, waiting for it up to `seconds`; nil if none came.
    func reply(to unique: UInt64, within seconds: Double = 30) -> Reply? {
        let deadline = Date(timeIntervalSinceNow: seconds)
        return condition.withLock {
            while replies[unique] == nil, condition.wait(until: deadline) {}
            return replies[unique]
        }
    }

    /// The reply to `unique` if it has come already.
    func replied(_ unique: UInt64) -> Reply? {
        condition.withLock { replies[unique] }
    }

    fileprivate func next() -> [UInt8]? {
        condition.withLock {
            while requests.isEmpty && !closed { condition.wait() }
            return closed ? nil : requests.removeFirst()
        }
    }

    fileprivate func record(_ unique: UInt64, _ reply: Reply) {
        condition.withLock {
            if replies[unique] != nil { answeredTwice.append(unique) }
            replies[unique] = reply
            condition.broadcast()
        }
    }

    struct Queue: FUSERequestQueue {
        let transport: MemoryTransport

        func receive(_ handle: (FUSERequest, any FUSEReplySlot) -> Void) -> Bool {
            guard let bytes = transport.next() else { return false }
            bytes.withUnsafeBytes { raw in
                let request = FUSERequest(bytes: raw)!
                handle(request, Slot(transport: transport, unique: request.unique))
            }
            return true
        }
    }

    struct Slot: FUSEReplySlot {
        let transport: MemoryTransport
        let unique: UInt64

        func send(error: Int32, _ payload: UnsafeRawBufferPointer) {
            transport.record(unique, Reply(error: error, payload: Array(payload)))
        }
    }
}

/// Bytes of a C struct, as a request body carries it.
func bytes<T>(of value: T) -> [UInt8] {
    withUnsafeBytes(of: value) { Array($0) }
}

/// A value read back from a reply's payload.
func value<T>(_ type: T.Type, from payload: [UInt8]) -> T? {
    guard payload.count >= MemoryLayout<T>.size else { return nil }
    return payload.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
}
