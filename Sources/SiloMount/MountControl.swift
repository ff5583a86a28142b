import Foundation
import SiloCore
import SiloWire
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// How `silo volume commit PATH` and `silo volume reload PATH` reach the process serving a mount:
/// a Unix socket in the mount's runtime directory, one JSON request and one JSON answer per connection.
public enum MountControl {
    public struct Request: Codable, Sendable {
        /// `commit`, `reload` or `status`.
        public var action: String
        public var author: String?
        public init(action: String, author: String? = nil) {
            self.action = action
            self.author = author
        }
    }

    public struct Answer: Codable, Sendable {
        /// The version the mount now shows (after a reload or status) or made (after a commit); nil
        /// if unchanged.
        public var version: Int64?
        /// Paths the commit carried, or local changes a reload kept on top (or status counts).
        public var changedPaths: Int
        public var status: Status?
        public var error: API.ErrorBody?
        public init(version: Int64?, changedPaths: Int, status: Status? = nil, error: API.ErrorBody? = nil) {
            self.version = version
            self.changedPaths = changedPaths
            self.status = status
            self.error = error
        }
    }

    /// What a mount reports of itself.
    public struct Status: Codable, Sendable, Equatable {
        public var writable: Bool
        /// The kernel reads and writes files with a local copy directly (FUSE passthrough).
        public var passthrough: Bool
        /// File opens handed to the kernel with a backing file, and opens this mount served itself.
        public var passedThroughOpens: Int
        public var servedOpens: Int
        /// Bytes of file data this mount answered reads with.
        public var bytesServed: Int
        public init(writable: Bool, passthrough: Bool, passedThroughOpens: Int, servedOpens: Int, bytesServed: Int) {
            self.writable = writable
            self.passthrough = passthrough
            self.passedThroughOpens = passedThroughOpens
            self.servedOpens = servedOpens
            self.bytesServed = bytesServed
        }
    }

    /// Where the mounts started with SILO_HOME `home` keep their runtime directories (`PID/`: local
    /// changes, control socket, `mount.json`).
    public static func runtimeDirectory(home: String) -> String { home + "/mounts" }

    /// What a running mount records about itself in its runtime directory (`mount.json`).
    public struct Record: Codable, Sendable {
        public var mountPoint: String
        public var volume: String
        public var pid: Int32
        public var socket: String
        /// The mount's device (``MountTable/siloMountDevice(at:)``), which tells it apart from a
        /// mount at the same path in another mount namespace (another container).
        public var device: UInt64
        public init(mountPoint: String, volume: String, pid: Int32, socket: String, device: UInt64) {
            self.mountPoint = mountPoint
            self.volume = volume
            self.pid = pid
            self.socket = socket
            self.device = device
        }
    }

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
                if let data = readLine(connection), let request = try? JSONDecoder().decode(Request.self, from: data) {
                    answer = handle(request)
                } else {
                    answer = Answer(version: nil, changedPaths: 0, error: API.ErrorBody(SiloError(.invalidArgument, "malformed request")))
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

    /// Sends `request` to the mount at (or containing) `path`, found under `runtime`, and returns its
    /// record and answer; an answer that carries an error is thrown as that error.
    public static func ask(_ request: Request, mountAt path: String, runtime: String) throws -> (Record, Answer) {
        let record = try find(path, under: runtime)
        let answer = try send(request, to: record.socket)
        if let error = answer.error { throw error.error }
        return (record, answer)
    }

    /// The record of the mount at `path` (or containing it) among those under `runtime`
    /// (`$SILO_HOME/mounts`), the innermost when mounts nest.
    public static func find(_ path: String, under runtime: String) throws -> Record {
        guard let target = MountTable.canonical(path) else {
            throw SiloError(.localFile, "\(path): \(String(cString: strerror(errno)))")
        }
        var best: Record?
        for name in (try? FileManager.default.contentsOfDirectory(atPath: runtime)) ?? [] {
            guard let data = FileManager.default.contents(atPath: "\(runtime)/\(name)/mount.json"),
                let record = try? JSONDecoder().decode(Record.self, from: data),
                kill(record.pid, 0) == 0 || errno == EPERM,
                target == record.mountPoint || target.hasPrefix(record.mountPoint + "/"),
                // This very mount, as this process sees it: containers mount at the same paths in
                // namespaces of their own, and their records sit in the same directory.
                MountTable.siloMountDevice(at: record.mountPoint) == record.device
            else { continue }
            if record.mountPoint.count > (best?.mountPoint.count ?? -1) { best = record }
        }
        guard let best else {
            throw SiloError(.invalidArgument, "\(target) is not in a silo mount (mount one with `silo mount VOLUME PATH`)")
        }
        return best
    }
}
