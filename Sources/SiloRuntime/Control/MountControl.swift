import Foundation
import SiloCore
import SiloWire
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// How `silo volume commit PATH`, `reload` and `status` (and ``Volume``, from Swift) reach the process
/// serving a mount: a Unix socket in the mount's runtime directory (`control.sock`, found through the
/// mount's `mount.json` ``Record``), one JSON ``Request`` line and one JSON ``Answer`` line per
/// connection. The serving side is ``serve(at:_:)`` (``AttachedVolume`` answers with its file system),
/// the asking side ``send(_:to:)`` and ``ask(_:mountAt:runtime:)``.
public enum MountControl {
    /// What a mount is asked to do. On the wire: `{"action":"commit","author":"…"}`,
    /// `{"action":"reload"}`, `{"action":"status"}`.
    public enum Request: Codable, Sendable, Equatable {
        /// Commit the mount's changes as one new version, recorded with `author` (the mount's own
        /// when nil).
        case commit(author: String?)
        /// Move the mount to the latest version, keeping its uncommitted changes on top.
        case reload
        /// Report the version, the uncommitted changes and the FUSE figures.
        case status

        private enum CodingKeys: String, CodingKey { case action, author }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let action = try container.decode(String.self, forKey: .action)
            switch action {
            case "commit": self = .commit(author: try container.decodeIfPresent(String.self, forKey: .author))
            case "reload": self = .reload
            case "status": self = .status
            default:
                throw DecodingError.dataCorruptedError(
                    forKey: .action, in: container, debugDescription: "a mount answers 'commit', 'reload' and 'status', not '\(action)'")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .commit(let author):
                try container.encode("commit", forKey: .action)
                try container.encodeIfPresent(author, forKey: .author)
            case .reload: try container.encode("reload", forKey: .action)
            case .status: try container.encode("status", forKey: .action)
            }
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
        let records = (try? FileManager.default.contentsOfDirectory(atPath: runtime)) ?? []
        var live: [Record] = []
        for name in records {
            guard let data = FileManager.default.contents(atPath: "\(runtime)/\(name)/mount.json"),
                let record = try? JSONDecoder().decode(Record.self, from: data),
                kill(record.pid, 0) == 0 || errno == EPERM
            else { continue }
            live.append(record)
            guard target == record.mountPoint || target.hasPrefix(record.mountPoint + "/"),
                // This very mount, as this process sees it: containers mount at the same paths in
                // namespaces of their own, and their records sit in the same directory.
                MountTable.siloMountDevice(at: record.mountPoint) == record.device
            else { continue }
            if record.mountPoint.count > (best?.mountPoint.count ?? -1) { best = record }
        }
        if best == nil, let device = Self.innermostSiloMountDevice(containing: target) {
            // A mount bound here from elsewhere (a container's view of a machine mount): the same
            // device as the mount that serves it.
            best = live.first { $0.device == device }
        }
        guard let best else {
            throw SiloError(.invalidArgument, "\(target) is not in a silo mount (mount one with `silo mount VOLUME PATH`)")
        }
        return best
    }

    /// The device of the innermost Silo mount at or above `path` (canonical) in this namespace.
    private static func innermostSiloMountDevice(containing path: String) -> UInt64? {
        var current = path
        while true {
            if let device = MountTable.siloMountDevice(at: current) { return device }
            guard current != "/", let slash = current.lastIndex(of: "/") else { return nil }
            current = slash == current.startIndex ? "/" : String(current[..<slash])
        }
    }
}
