import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A loopback TCP proxy that relays everything both ways, except that it swallows the answer to the
/// first request whose request line contains a marker and drops that connection instead: the failure
/// a client meets when the network fails after the server did the work.
public final class DroppingProxy: @unchecked Sendable {
    public private(set) var url = ""
    private let upstreamPort: UInt16
    private let marker: [UInt8]
    private let listener: Int32
    private let lock = NSLock()
    private var droppedCount = 0

    /// How many answers the proxy has swallowed.
    public var dropped: Int { lock.withLock { droppedCount } }

    public init(upstream: String, dropAnswerTo marker: String) throws {
        guard let port = URL(string: upstream)?.port else { throw SiloServerError(message: "no port in \(upstream)") }
        self.upstreamPort = UInt16(port)
        self.marker = Array(marker.utf8)
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else { throw SiloServerError(message: "proxy: cannot listen (errno \(errno))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        url = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    public func close() {
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: upstreamPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                Glibc.close(client)
                Glibc.close(upstream)
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
            if containsMarkedRequestLine(chunk) {
                let drop = lock.withLock {
                    guard droppedCount == 0 else { return false }
                    droppedCount += 1
                    return true
                }
                if drop { connection.lock.withLock { connection.dropNextAnswer = true } }
            }
            guard writeAll(connection.upstream, chunk) else { break }
        }
        connection.closeBoth()
    }

    private func pumpAnswers(_ connection: Connection) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(connection.upstream, &buffer, buffer.count)
            guard count > 0 else { break }
            if connection.lock.withLock({ connection.dropNextAnswer }) { break }
            guard writeAll(connection.client, buffer[0..<count]) else { break }
        }
        connection.closeBoth()
        Glibc.close(connection.client)
        Glibc.close(connection.upstream)
    }

    /// Whether `chunk` starts a request whose request line holds the marker.
    private func containsMarkedRequestLine(_ chunk: ArraySlice<UInt8>) -> Bool {
        guard let end = chunk.firstIndex(of: UInt8(ascii: "\r")) else { return false }
        let line = Array(chunk[chunk.startIndex..<end])
        guard line.count >= marker.count else { return false }
        return (0...(line.count - marker.count)).contains { Array(line[$0..<($0 + marker.count)]) == marker }
    }

    private func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }
}
