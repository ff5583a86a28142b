import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A loopback TCP proxy that relays everything both ways, and shows each chunk a client sends to
/// `inspect` first, which may hold it (by blocking) or have the answer to it swallowed and its
/// connection dropped: the network's failures, arranged on purpose. ``DroppingProxy`` and
/// ``HoldingProxy`` are its two uses.
public final class LoopbackProxy: @unchecked Sendable {
    /// What becomes of the answer to a chunk a client sent.
    public enum Verdict: Sendable {
        case relay
        /// The answer is swallowed and the connection dropped.
        case dropAnswer
    }

    public let url: String
    private let upstreamPort: UInt16
    private let listener: Int32
    private let inspect: @Sendable (ArraySlice<UInt8>) -> Verdict
    private let swallowed: @Sendable () -> Void

    /// `swallowed` is told each time an answer to be dropped arrives from the server (and goes no
    /// further).
    public init(
        upstream: String, inspect: @escaping @Sendable (ArraySlice<UInt8>) -> Verdict, swallowed: @escaping @Sendable () -> Void = {}
    ) throws {
        upstreamPort = try Loopback.port(of: upstream)
        self.inspect = inspect
        self.swallowed = swallowed
        let (listener, port) = try Loopback.listen()
        self.listener = listener
        url = "http://127.0.0.1:\(port)"
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    public func close() {
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
            Thread.detachNewThread { [self] in pumpRequests(connection) }
            Thread.detachNewThread { [self] in pumpAnswers(connection) }
        }
    }

    /// Both directions of one relayed connection; the second pump to end closes the sockets, so
    /// neither reads a descriptor the other closed (and the system reused).
    private final class Connection: @unchecked Sendable {
        let client: Int32
        let upstream: Int32
        private let lock = NSLock()
        private var pumps = 2
        private var dropping = false

        init(client: Int32, upstream: Int32) {
            self.client = client
            self.upstream = upstream
        }

        var dropsAnswer: Bool {
            get { lock.withLock { dropping } }
            set { lock.withLock { dropping = newValue } }
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

    private func pumpRequests(_ connection: Connection) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(connection.client, &buffer, buffer.count)
            guard count > 0 else { break }
            let chunk = buffer[0..<count]
            if inspect(chunk) == .dropAnswer { connection.dropsAnswer = true }
            guard Loopback.writeAll(connection.upstream, chunk) else { break }
        }
        connection.pumpEnded()
    }

    private func pumpAnswers(_ connection: Connection) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(connection.upstream, &buffer, buffer.count)
            guard count > 0 else { break }
            if connection.dropsAnswer {
                swallowed()
                break
            }
            guard Loopback.writeAll(connection.client, buffer[0..<count]) else { break }
        }
        connection.pumpEnded()
    }
}

/// A ``LoopbackProxy`` that swallows the answer to the first request whose request line contains a
/// marker and drops that connection instead: the failure a client meets when the network fails after
/// the server did the work.
public final class DroppingProxy: @unchecked Sendable {
    private final class Tally: @unchecked Sendable {
        let lock = NSLock()
        var dropped = 0
        let answered = NSCondition()
        var swallowed = false

        /// Whether this marked request is the first, whose answer is dropped.
        func first() -> Bool {
            lock.withLock {
                dropped += 1
                return dropped == 1
            }
        }
    }

    private let tally = Tally()
    private var proxy: LoopbackProxy!
    public var url: String { proxy.url }
    /// How many answers the proxy has swallowed.
    public var dropped: Int { tally.lock.withLock { min(tally.dropped, 1) } }

    public init(upstream: String, dropAnswerTo marker: String) throws {
        let marker = Array(marker.utf8)
        proxy = try LoopbackProxy(
            upstream: upstream,
            inspect: { [tally] chunk in
                Loopback.requestLine(of: chunk, contains: marker) && tally.first() ? .dropAnswer : .relay
            },
            swallowed: { [tally] in
                tally.answered.withLock {
                    tally.swallowed = true
                    tally.answered.broadcast()
                }
            })
    }

    /// Waits until the server has answered the marked request (the answer swallowed): the server did
    /// its work. False if it has not within `seconds`.
    public func waitUntilAnswered(seconds: TimeInterval) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        return tally.answered.withLock {
            while !tally.swallowed {
                guard tally.answered.wait(until: deadline) else { return false }
            }
            return true
        }
    }

    public func close() { proxy.close() }
}

/// A ``LoopbackProxy`` that holds the first request whose request line contains a marker (and
/// whatever follows it on that connection) until ``release()``: a test can then act while a client is
/// known to have sent that request and the server not to have seen it, as a slow network would
/// arrange.
public final class HoldingProxy: @unchecked Sendable {
    private final class Gate: @unchecked Sendable {
        let condition = NSCondition()
        var holding = false
        var released = false

        /// Blocks the first marked request until released; later ones pass.
        func hold() {
            condition.withLock {
                guard !holding else { return }
                holding = true
                condition.broadcast()
                while !released { condition.wait() }
            }
        }
    }

    private let gate = Gate()
    private var proxy: LoopbackProxy!
    public var url: String { proxy.url }

    public init(upstream: String, holdRequestTo marker: String) throws {
        let marker = Array(marker.utf8)
        proxy = try LoopbackProxy(upstream: upstream) { [gate] chunk in
            if Loopback.requestLine(of: chunk, contains: marker) { gate.hold() }
            return .relay
        }
    }

    /// Whether the proxy holds the marked request now.
    public var isHolding: Bool { gate.condition.withLock { gate.holding && !gate.released } }

    /// Blocks until the proxy holds the marked request; false if none arrived within `seconds`.
    public func waitUntilHolding(seconds: TimeInterval) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        return gate.condition.withLock {
            while !gate.holding {
                guard gate.condition.wait(until: deadline) else { return gate.holding }
            }
            return true
        }
    }

    /// Lets the held request (and everything after it) through.
    public func release() {
        gate.condition.withLock {
            gate.released = true
            gate.condition.broadcast()
        }
    }

    public func close() {
        release()
        proxy.close()
    }
}
