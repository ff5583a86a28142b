import Foundation
import SiloCore
import SiloWire

#if canImport(Glibc)
import Glibc
#endif

/// What a running container records about itself in `$SILO_HOME/containers/ID.json`, beside a lock
/// file its supervisor holds for as long as it lives (so a container killed with SIGKILL is seen as
/// gone, whatever became of its pid).
struct ContainerRecord: Codable {
    struct Attached: Codable {
        var volume: String
        var path: String
        var readOnly: Bool
        /// Made for this container and deleted with it.
        var ephemeral: Bool
        /// The mount's control socket.
        var socket: String
    }

    var id: String
    /// The supervisor: it serves the mounts, in the container's mount namespace.
    var pid: Int32
    /// Seconds since the Unix epoch.
    var created: Double
    var attachments: [Attached]
    var environment: [String]
    var workdir: String
    var backgroundCommits: Bool

    static var directory: String { SiloEnvironment.home + "/containers" }
    static func path(_ id: String) -> String { "\(directory)/\(id).json" }
    static func lockPath(_ id: String) -> String { "\(directory)/\(id).lock" }
    /// What the supervisor says of its ending (commits made, changes discarded), for `stop` to print.
    static func endingPath(_ id: String) -> String { "\(directory)/\(id).ending" }

    static func newID() -> String {
        (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// The record of container `id` (a unique prefix will do), if its supervisor is alive. Records of
    /// dead containers are removed on the way.
    static func find(_ id: String) throws(SiloError) -> ContainerRecord {
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
    static func all() -> [ContainerRecord] {
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
    static func isAlive(_ id: String) -> Bool {
        let fd = open(lockPath(id), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK
    }

    /// Takes the lock of `id` for this process's lifetime; returns its descriptor.
    static func lock(_ id: String) throws -> Int32 {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fd = open(lockPath(id), O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            throw SiloError(.io, "cannot lock \(lockPath(id)): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    /// Blocks until the supervisor of `id` has exited (its lock is free).
    static func waitForExit(_ id: String) {
        let fd = open(lockPath(id), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        while flock(fd, LOCK_SH) != 0 && errno == EINTR {}
        close(fd)
    }

    static func remove(_ id: String) {
        for file in [path(id), lockPath(id), endingPath(id)] { unlink(file) }
    }

    func write() throws {
        try JSONEncoder().encode(self).write(to: URL(fileURLWithPath: Self.path(id)), options: .atomic)
    }
}
