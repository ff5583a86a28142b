import Foundation
import SiloCore
import SiloWire

#if canImport(Glibc)
import Glibc
#endif

/// What a running container records about itself in `$SILO_HOME/containers/ID.json`, beside a lock
/// file its supervisor holds for as long as it lives (so a container killed with SIGKILL is seen as
/// gone, whatever became of its pid).
public struct ContainerRecord: Codable, Sendable {
    public struct Attached: Codable, Sendable {
        public var volume: String
        public var path: String
        public var readOnly: Bool
        /// Made for this container and deleted with it.
        public var ephemeral: Bool
        /// The mount's control socket.
        public var socket: String
    }

    public var id: String
    /// The supervisor: it serves the mounts, in the container's mount namespace.
    public var pid: Int32
    /// Seconds since the Unix epoch.
    public var created: Double
    public var attachments: [Attached]
    public var environment: [String]
    public var workdir: String
    public var backgroundCommits: Bool

    public static func newID() -> String {
        (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}

/// The records of the containers running with one SILO_HOME: `HOME/containers/ID.json`, `ID.lock`
/// (held by the supervisor while it lives) and `ID.ending`.
public struct ContainerRecords: Sendable {
    public let directory: String

    public init(home: String) {
        directory = home + "/containers"
    }

    public func path(_ id: String) -> String { "\(directory)/\(id).json" }
    func lockPath(_ id: String) -> String { "\(directory)/\(id).lock" }
    /// What the supervisor says of its ending (commits made, changes discarded), for `stop` to print.
    public func endingPath(_ id: String) -> String { "\(directory)/\(id).ending" }

    /// The record of container `id` (a unique prefix will do), if its supervisor is alive. Records of
    /// dead containers are removed on the way.
    public func find(_ id: String) throws(SiloError) -> ContainerRecord {
        let matches = all().filter { $0.id.hasPrefix(id) }
        guard !id.isEmpty, let record = matches.first else {
            throw SiloError(.notFound, "no running container '\(id)'; `silo container list` shows the running ones")
        }
        guard matches.count == 1 else {
            throw SiloError(.invalidArgument, "'\(id)' names \(matches.count) containers; give more of the id")
        }
        return record
    }

    /// Every running container, oldest first.
    public func all() -> [ContainerRecord] {
        var records: [ContainerRecord] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".json") {
            let id = String(name.dropLast(5))
            guard let data = FileManager.default.contents(atPath: path(id)),
                let record = try? JSONDecoder().decode(ContainerRecord.self, from: data)
            else { continue }
            if isAlive(id) {
                records.append(record)
            } else {
                remove(id)
            }
        }
        return records.sorted { $0.created < $1.created }
    }

    /// Whether the supervisor of `id` still holds its lock.
    public func isAlive(_ id: String) -> Bool {
        let fd = open(lockPath(id), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK
    }

    /// Takes the lock of `id` for this process's lifetime; returns its descriptor.
    public func lock(_ id: String) throws -> Int32 {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fd = open(lockPath(id), O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            throw SiloError(.io, "cannot lock \(lockPath(id)): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    /// Blocks until the supervisor of `id` has exited (its lock is free).
    public func waitForExit(_ id: String) {
        let fd = open(lockPath(id), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        while flock(fd, LOCK_SH) != 0 && errno == EINTR {}
        close(fd)
    }

    public func remove(_ id: String) {
        for file in [path(id), lockPath(id), endingPath(id)] { unlink(file) }
    }

    public func write(_ record: ContainerRecord) throws {
        try JSONEncoder().encode(record).write(to: URL(fileURLWithPath: path(record.id)), options: .atomic)
    }
}
