import Foundation
import SiloCore
import SiloWire

#if canImport(Glibc)
import Glibc
#endif

/// Both ends of the control socket, side by side.
extension MountControl {
    /// Listens on `path` and answers each request with `handle`, on a thread of its own, until the
    /// returned descriptor is closed.
    public static func serve(at path: String, _ handle: @escaping @Sendable (Request) -> Answer) throws -> Int32 {
        unlink(path)
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw SiloError(.io, "cannot create the mount's control socket: \(String(cString: strerror(errno)))") }
        var address = try socketAddress(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 8) == 0 else {
            let code = errno
            close(listener)
            throw SiloError(.io, "cannot listen on \(path): \(String(cString: strerror(code)))")
        }
        Thread.detachNewThread {
            while true {
                let connection = accept(listener, nil, nil)
                if connection < 0 {
                    if errno == EINTR { continue }
                    return
                }
                let answer: Answer
                do {
                    guard let data = readLine(connection) else { throw SiloError(.invalidArgument, "an empty request") }
                    answer = handle(try JSONDecoder().decode(Request.self, from: data))
                } catch {
                    answer = Answer(version: nil, changedPaths: 0, error: API.ErrorBody(SiloError(.invalidArgument, "malformed request: \(error)")))
                }
                var bytes = (try? JSONEncoder().encode(answer)) ?? Data()
                bytes.append(0x0A)
                _ = bytes.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
                close(connection)
            }
        }
        return listener
    }

    /// Sends `request` to the mount listening on `path` and returns its answer.
    public static func send(_ request: Request, to path: String) throws -> Answer {
        let connection = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard connection >= 0 else { throw SiloError(.io, "cannot create a socket: \(String(cString: strerror(errno)))") }
        defer { close(connection) }
        var address = try socketAddress(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(connection, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            throw SiloError(.unavailable, "the mount's process does not answer at \(path) (\(String(cString: strerror(errno)))); is it still running?")
        }
        var bytes = try JSONEncoder().encode(request)
        bytes.append(0x0A)
        _ = bytes.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
        guard let line = readLine(connection) else {
            throw SiloError(.unavailable, "the mount's process closed the connection without answering")
        }
        return try JSONDecoder().decode(Answer.self, from: line)
    }

    private static func readLine(_ fd: Int32) -> Data? {
        var data = Data()
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1 {
            if byte == 0x0A { return data }
            data.append(byte)
            if data.count > 1 << 20 { return nil }
        }
        return data.isEmpty ? nil : data
    }

    private static func socketAddress(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else {
            throw SiloError(.invalidArgument, "the control socket path \(path) is longer than \(capacity - 1) bytes; use a shorter SILO_HOME")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }
}
