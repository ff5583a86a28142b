import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The socket calls the test proxies share: a listener on a free loopback port, a connection to one,
/// and a write that sends everything or fails.
enum Loopback {
    /// A listening socket on 127.0.0.1 and the port the kernel picked for it.
    static func listen() throws -> (socket: Int32, port: UInt16) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.address(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(listener, 16) == 0 else {
            let code = errno
            Glibc.close(listener)
            throw SiloServerError(message: "proxy: cannot listen (errno \(code))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        return (listener, UInt16(bigEndian: address.sin_port))
    }

    /// A socket connected to `port` on 127.0.0.1, or nil.
    static func connect(port: UInt16) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.address(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(fd)
            return nil
        }
        return fd
    }

    /// Sends all of `bytes` on socket `fd`; false once the peer is gone. `MSG_NOSIGNAL`: a peer that
    /// went away must not raise SIGPIPE, which would end the whole test process.
    static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    /// The port of an `http://host:port` URL.
    static func port(of url: String) throws -> UInt16 {
        guard let port = URL(string: url)?.port else { throw SiloServerError(message: "no port in \(url)") }
        return UInt16(port)
    }

    /// Whether `chunk` starts a request whose request line holds `marker`.
    static func requestLine(of chunk: ArraySlice<UInt8>, contains marker: [UInt8]) -> Bool {
        guard let end = chunk.firstIndex(of: UInt8(ascii: "\r")) else { return false }
        let line = Array(chunk[chunk.startIndex..<end])
        guard line.count >= marker.count else { return false }
        return (0...(line.count - marker.count)).contains { Array(line[$0..<($0 + marker.count)]) == marker }
    }

    private static func address(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}

/// How the server ended a raw exchange.
public enum RawHTTPEnd: Equatable, Sendable {
    /// An orderly close (FIN) after the answer.
    case closed
    /// The connection was reset (RST); the answer may be cut short.
    case reset
}

/// Sends `request` byte for byte on a new connection to `url`'s port, then reads until the server
/// closes the connection: for requests an HTTP client library would refuse to send, or whose failure
/// it would hide. Throws if the server neither answers nor closes within `timeoutSeconds`.
public func rawHTTPExchange(with url: String, sending request: [UInt8], timeoutSeconds: Int = 30) throws -> (answer: [UInt8], end: RawHTTPEnd) {
    guard let fd = Loopback.connect(port: try Loopback.port(of: url)) else {
        throw SiloServerError(message: "cannot connect to \(url) (errno \(errno))")
    }
    defer { close(fd) }
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var end = RawHTTPEnd.closed
    if !Loopback.writeAll(fd, request[...]) {
        guard errno == ECONNRESET || errno == EPIPE else { throw SiloServerError(message: "write failed (errno \(errno))") }
        end = .reset
    }
    var answer: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count > 0 {
            answer += buffer[0..<count]
        } else if count == 0 {
            return (answer, end)
        } else if errno == ECONNRESET {
            return (answer, .reset)
        } else if errno == EINTR {
            continue
        } else {
            throw SiloServerError(message: "no answer and no close within \(timeoutSeconds) s (errno \(errno)); got \(answer.count) bytes")
        }
    }
}

/// An HTTP answer read off a raw connection.
public struct RawHTTPAnswer: Sendable {
    public let status: Int
    /// The status line and headers, as sent.
    public let head: String
    public let body: String

    init(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        head = parts[0]
        body = parts.dropFirst().joined(separator: "\r\n\r\n")
        status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// The value of header `name` (case-insensitive), if sent.
    public func header(_ name: String) -> String? {
        for line in head.split(separator: "\r\n").dropFirst() {
            let pair = line.split(separator: ":", maxSplits: 1)
            if pair.count == 2, pair[0].lowercased() == name.lowercased() { return pair[1].trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }
}

private func requestHead(_ method: String, _ path: String, token: String?, length: Int?) -> [UInt8] {
    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if let token { head += "Authorization: Bearer \(token)\r\n" }
    if let length { head += "Content-Length: \(length)\r\n" }
    return Array((head + "\r\n").utf8)
}

/// One request on a connection of its own, blocking until the server answers and closes: for tests
/// that must not wait on the cooperative thread pool, which busy parallel suites can starve.
public func rawHTTPRequest(_ method: String, _ url: String, _ path: String, token: String? = nil, body: [UInt8]? = nil) throws -> RawHTTPAnswer {
    let request = requestHead(method, path, token: token, length: body?.count) + (body ?? [])
    return RawHTTPAnswer(try rawHTTPExchange(with: url, sending: request).answer)
}

/// A request sent all but its last byte: the server has begun it and waits for the rest until
/// ``finish()`` sends it, for as long as a test needs. Blocking, on a connection of its own.
public final class HeldHTTPRequest: @unchecked Sendable {
    private let fd: Int32
    private let lastByte: UInt8

    public init(_ method: String, _ url: String, _ path: String, token: String, body: [UInt8]) throws {
        guard let fd = Loopback.connect(port: try Loopback.port(of: url)) else {
            throw SiloServerError(message: "cannot connect to \(url) (errno \(errno))")
        }
        self.fd = fd
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        lastByte = body.last!
        guard Loopback.writeAll(fd, (requestHead(method, path, token: token, length: body.count) + body.dropLast())[...]) else {
            close(fd)
            throw SiloServerError(message: "could not send the request (errno \(errno))")
        }
    }

    /// Sends the last byte and reads the answer.
    public func finish() throws -> RawHTTPAnswer {
        defer { close(fd) }
        guard Loopback.writeAll(fd, [lastByte][...]) else { throw SiloServerError(message: "the server closed the held request") }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count > 0 { answer += buffer[0..<count] } else if count < 0 && errno == EINTR { continue } else { break }
        }
        return RawHTTPAnswer(answer)
    }
}
