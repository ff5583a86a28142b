import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A loopback TCP proxy that relays everything both ways, except that it holds the first request
/// whose request line contains a marker (and whatever follows it on that connection) until
/// ``release()``: a test can then act while a client is known to have sent that request and the
/// server not to have seen it, as a slow network would arrange.
public final class HoldingProxy: @unchecked Sendable {
    public let url: String
    private let upstreamPort: UInt16
    private let marker: [UInt8]
    private let listener: Int32
    private let condition = NSCondition()
    private var holding = false
    private var released = false

    public init(upstream: String, holdRequestTo marker: String) throws {
        upstreamPort = try Loopback.port(of: upstream)
        self.marker = Array(marker.utf8)
        let (listener, port) = try Loopback.listen()
        self.listener = listener
        url = "http://127.0.0.1:\(port)"
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// Whether the proxy holds the marked request now.
    public var isHolding: Bool { condition.withLock { holding && !released } }

    /// Blocks until the proxy holds the marked request; false if none arrived within `seconds`.
    public func waitUntilHolding(seconds: TimeInterval) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        return condition.withLock {
            while !holding {
                guard condition.wait(until: deadline) else { return holding }
            }
            return true
        }
    }

    /// Lets the held request (and everything after it) through.
    public func release() {
        condition.withLock {
            released = true
            condition.broadcast()
        }
    }

    public func close() {
        release()
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            guard let upstream = Loopback.connect(port: upstreamPort) else {
                Glibc.close(client)
                continue
            }
            let connection = Connection(client: client, upstream: upstream)
            Thread.detachNewThread { [self] in pump(connection, from: client, to: upstream, holding: true) }
            Thread.detachNewThread { [self] in pump(connection, from: upstream, to: client, holding: false) }
        }
    }

    /// Both directions of one relayed connection; the second pump to end closes the sockets, so
    /// neither reads a descriptor the other closed (and the system reused).
    private final class Connection: @unchecked Sendable {
        let client: Int32
        let upstream: Int32
        private let lock = NSLock()
        private var pumps = 2
        init(client: Int32, upstream: Int32) {
            self.client = client
            self.upstream = upstream
        }
        func pumpEnded() {
            shutdown(client, Int32(SHUT_RDWR))
            shutdown(upstream, Int32(SHUT_RDWR))
            let last = lock.withLock {
                pumps -= 1
                return pumps == 0
            }
            if last {
                Glibc.close(client)
                Glibc.close(upstream)
            }
        }
    }

    private func pump(_ connection: Connection, from source: Int32, to destination: Int32, holding mayHold: Bool) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(source, &buffer, buffer.count)
            guard count > 0 else { break }
            let chunk = buffer[0..<count]
            if mayHold, Loopback.requestLine(of: chunk, contains: marker) { hold() }
            guard Loopback.writeAll(destination, chunk) else { break }
        }
        connection.pumpEnded()
    }

    /// Blocks the first marked request until ``release()``; later ones pass.
    private func hold() {
        condition.withLock {
            guard !holding else { return }
            holding = true
            condition.broadcast()
            while !released { condition.wait() }
        }
    }
}
