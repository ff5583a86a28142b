import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A loopback TCP proxy that relays everything both ways, except that it swallows the answer to the
/// first request whose request line contains a marker and drops that connection instead: the failure
/// a client meets when the network fails after the server did the work.
public final class DroppingProxy: @unchecked Sendable {
    public let url: String
    private let upstreamPort: UInt16
    private let marker: [UInt8]
    private let listener: Int32
    private let lock = NSLock()
    private var droppedCount = 0

    /// How many answers the proxy has swallowed.
    public var dropped: Int { lock.withLock { droppedCount } }

    public init(upstream: String, dropAnswerTo marker: String) throws {
        upstreamPort = try Loopback.port(of: upstream)
        self.marker = Array(marker.utf8)
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

    private final class Connection: @unchecked Sendable {
        let client: Int32
        let upstream: Int32
        let lock = NSLock()
        var dropNextAnswer = false
        init(client: Int32, upstream: Int32) {
            self.client = client
            self.upstream = upstream
        }
        func closeBoth() {
            shutdown(client, Int32(SHUT_RDWR))
            shutdown(upstream, Int32(SHUT_RDWR))
        }
    }

    private func pumpRequests(_ connection: Connection) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(connection.client, &buffer, buffer.count)
            guard count > 0 else { break }
            let chunk = buffer[0..<count]
            if Loopback.requestLine(of: chunk, contains: marker) {
                let drop = lock.withLock {
                    guard droppedCount == 0 else { return false }
                    droppedCount += 1
                    return true
                }
                if drop { connection.lock.withLock { connection.dropNextAnswer = true } }
            }
            guard Loopback.writeAll(connection.upstream, chunk) else { break }
        }
        connection.closeBoth()
    }

    private func pumpAnswers(_ connection: Connection) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(connection.upstream, &buffer, buffer.count)
            guard count > 0 else { break }
            if connection.lock.withLock({ connection.dropNextAnswer }) { break }
            guard Loopback.writeAll(connection.client, buffer[0..<count]) else { break }
        }
        connection.closeBoth()
        Glibc.close(connection.client)
        Glibc.close(connection.upstream)
    }
}
