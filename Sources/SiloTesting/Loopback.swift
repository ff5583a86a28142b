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
