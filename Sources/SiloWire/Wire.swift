import Foundation
import SiloCore

// The JSON shapes of the model, shared by the server and its clients. Decoding validates as the
// initialisers do (names, paths, hashes), so a handler never sees a malformed value.

extension Entry: Codable {
    private enum CodingKeys: String, CodingKey {
        case path, kind, size, mode, mtimeNs, version, inline, blocks, blockSize, target, uid, gid, xattrs, file, links, major, minor
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let links = try container.decodeIfPresent(Int.self, forKey: .links) ?? 1
        guard links >= 1 else {
            throw DecodingError.dataCorruptedError(forKey: .links, in: container, debugDescription: "a file has at least one name")
        }
        self.init(
            path: try container.decode(VolumePath.self, forKey: .path),
            kind: try container.decode(EntryKind.self, forKey: .kind),
            size: try container.decode(Int64.self, forKey: .size),
            mode: try container.decode(UInt32.self, forKey: .mode),
            mtimeNanoseconds: try container.decode(Int64.self, forKey: .mtimeNs),
            version: try container.decode(Version.self, forKey: .version),
            content: try FileContent.decodeIfPresent(from: container, inline: .inline, blocks: .blocks, blockSize: .blockSize),
            symlinkTarget: try container.decodeIfPresent(String.self, forKey: .target),
            owner: try Owner.decodeIfPresent(from: container, uid: .uid, gid: .gid),
            extendedAttributes: try ExtendedAttributesWire.decodeIfPresent(from: container, forKey: .xattrs) ?? [:],
            fileID: try FileID.decodeIfPresent(from: container, forKey: .file),
            linkCount: links,
            device: try DeviceNumber.decodeIfPresent(from: container, major: .major, minor: .minor)
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try owner?.encode(into: &container, uid: .uid, gid: .gid)
        try container.encodeIfPresent(fileID?.description, forKey: .file)
        if linkCount != 1 { try container.encode(linkCount, forKey: .links) }
        try container.encodeIfPresent(device?.major, forKey: .major)
        try container.encodeIfPresent(device?.minor, forKey: .minor)
        if !extendedAttributes.isEmpty { try ExtendedAttributesWire.encode(extendedAttributes, into: &container, forKey: .xattrs) }
        try container.encode(kind, forKey: .kind)
        try container.encode(size, forKey: .size)
        try container.encode(mode, forKey: .mode)
        try container.encode(mtimeNanoseconds, forKey: .mtimeNs)
        try container.encode(version, forKey: .version)
        try content?.encode(into: &container, inline: .inline, blocks: .blocks, blockSize: .blockSize)
        try container.encodeIfPresent(symlinkTarget, forKey: .target)
    }
}

extension FileLock: Codable {
    private enum CodingKeys: String, CodingKey { case kind, start, end, owner, pid, flock }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try container.decode(String.self, forKey: .kind)
        guard kind == "shared" || kind == "exclusive" else {
            throw DecodingError.dataCorruptedError(forKey: .kind, in: container, debugDescription: "a lock is 'shared' or 'exclusive'")
        }
        self.init(
            kind: kind == "shared" ? .shared : .exclusive, start: try container.decode(UInt64.self, forKey: .start),
            end: try container.decode(UInt64.self, forKey: .end), owner: try container.decode(UInt64.self, forKey: .owner),
            pid: try container.decodeIfPresent(UInt32.self, forKey: .pid) ?? 0, isFlock: try container.decodeIfPresent(Bool.self, forKey: .flock) ?? false)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind == .shared ? "shared" : "exclusive", forKey: .kind)
        try container.encode(start, forKey: .start)
        try container.encode(end, forKey: .end)
        try container.encode(owner, forKey: .owner)
        try container.encode(pid, forKey: .pid)
        try container.encode(isFlock, forKey: .flock)
    }
}

extension LockCall: Codable {
    private enum CodingKeys: String, CodingKey { case action, holder, path, lock, leaseMs }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            try container.decode(Action.self, forKey: .action), holder: try container.decode(String.self, forKey: .holder),
            path: try container.decodeIfPresent(VolumePath.self, forKey: .path), lock: try container.decodeIfPresent(FileLock.self, forKey: .lock),
            leaseMilliseconds: try container.decodeIfPresent(Int64.self, forKey: .leaseMs) ?? 10_000)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(action, forKey: .action)
        try container.encode(holder, forKey: .holder)
        try container.encodeIfPresent(path, forKey: .path)
        try container.encodeIfPresent(lock, forKey: .lock)
        try container.encode(leaseMilliseconds, forKey: .leaseMs)
    }
}

extension DeviceNumber: Codable {
    private enum CodingKeys: String, CodingKey { case major, minor }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(major: try container.decode(UInt32.self, forKey: .major), minor: try container.decode(UInt32.self, forKey: .minor))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(major, forKey: .major)
        try container.encode(minor, forKey: .minor)
    }

    /// A device number travels as `major` and `minor`, both or neither.
    static func decodeIfPresent<Key: CodingKey>(from container: KeyedDecodingContainer<Key>, major: Key, minor: Key) throws -> DeviceNumber? {
        let first = try container.decodeIfPresent(UInt32.self, forKey: major)
        let second = try container.decodeIfPresent(UInt32.self, forKey: minor)
        switch (first, second) {
        case (nil, nil): return nil
        case (let first?, let second?): return DeviceNumber(major: first, minor: second)
        default:
            throw DecodingError.dataCorruptedError(forKey: first == nil ? major : minor, in: container, debugDescription: "'major' and 'minor' go together")
        }
    }
}

extension FileID {
    /// A file id travels as 16 hex digits.
    static func decodeIfPresent<Key: CodingKey>(from container: KeyedDecodingContainer<Key>, forKey key: Key) throws -> FileID? {
        guard let hex = try container.decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let id = FileID(hex: hex) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "a file id is 16 hex digits")
        }
        return id
    }
}

/// Extended attributes travel, and rest in the metadata database, as an object of names to base64
/// values.
public enum ExtendedAttributesWire {
    public static func base64(_ attributes: ExtendedAttributes) -> [String: String] {
        attributes.mapValues { Data($0).base64EncodedString() }
    }

    /// The attributes an object of base64 values names; the first name whose value is not base64 is
    /// thrown back.
    public static func attributes(base64 encoded: [String: String]) throws(BadValue) -> ExtendedAttributes {
        var attributes: ExtendedAttributes = [:]
        for (name, value) in encoded {
            guard let bytes = Data(base64Encoded: value) else { throw BadValue(name: name) }
            attributes[name] = [UInt8](bytes)
        }
        return attributes
    }

    public struct BadValue: Error {
        public var name: String
    }

    static func decodeIfPresent<Key: CodingKey>(from container: KeyedDecodingContainer<Key>, forKey key: Key) throws -> ExtendedAttributes? {
        guard let encoded = try container.decodeIfPresent([String: String].self, forKey: key) else { return nil }
        do {
            return try attributes(base64: encoded)
        } catch {
            throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "the value of '\(error.name)' is not base64")
        }
    }

    static func encode<Key: CodingKey>(_ attributes: ExtendedAttributes, into container: inout KeyedEncodingContainer<Key>, forKey key: Key) throws {
        try container.encode(base64(attributes), forKey: key)
    }
}

extension Owner {
    /// An owner travels as `uid` and `gid` beside the other fields, both or neither.
    static func decodeIfPresent<Key: CodingKey>(from container: KeyedDecodingContainer<Key>, uid: Key, gid: Key) throws -> Owner? {
        let user = try container.decodeIfPresent(UInt32.self, forKey: uid)
        let group = try container.decodeIfPresent(UInt32.self, forKey: gid)
        switch (user, group) {
        case (nil, nil): return nil
        case (let user?, let group?): return Owner(uid: user, gid: group)
        default:
            throw DecodingError.dataCorruptedError(forKey: user == nil ? uid : gid, in: container, debugDescription: "'uid' and 'gid' go together")
        }
    }

    func encode<Key: CodingKey>(into container: inout KeyedEncodingContainer<Key>, uid: Key, gid: Key) throws {
        try container.encode(self.uid, forKey: uid)
        try container.encode(self.gid, forKey: gid)
    }
}

extension FileContent {
    /// Inline bytes travel as base64 under `inline`; block lists as hex hashes under `blocks` with `blockSize`.
    static func decodeIfPresent<Key: CodingKey>(
        from container: KeyedDecodingContainer<Key>, inline: Key, blocks: Key, blockSize: Key
    ) throws -> FileContent? {
        if let data = try container.decodeIfPresent(Data.self, forKey: inline) {
            return .inline(Array(data))
        }
        guard let hashes = try container.decodeIfPresent([BlockHash].self, forKey: blocks) else { return nil }
        let size = try container.decode(Int.self, forKey: blockSize)
        guard BlockLayout.allowedBlockSizes.contains(size) else {
            throw DecodingError.dataCorruptedError(
                forKey: blockSize, in: container,
                debugDescription: "blockSize must be between \(BlockLayout.allowedBlockSizes.lowerBound) and \(BlockLayout.allowedBlockSizes.upperBound)"
            )
        }
        return .blocks(hashes, blockSize: size)
    }

    func encode<Key: CodingKey>(into container: inout KeyedEncodingContainer<Key>, inline: Key, blocks: Key, blockSize: Key) throws {
        switch self {
        case .inline(let bytes):
            try container.encode(Data(bytes), forKey: inline)
        case .blocks(let hashes, let size):
            try container.encode(hashes, forKey: blocks)
            try container.encode(size, forKey: blockSize)
        }
    }
}

extension Precondition: Codable {
    private enum CodingKeys: String, CodingKey { case absent, version, present, leaseOf }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let version = try container.decodeIfPresent(Version.self, forKey: .version) {
            self = .atVersion(version)
        } else if try container.decodeIfPresent(Bool.self, forKey: .absent) == true {
            self = .absent
        } else if try container.decodeIfPresent(Bool.self, forKey: .present) == true {
            self = .present
        } else if let holder = try container.decodeIfPresent(String.self, forKey: .leaseOf) {
            guard LockCall.isHolderName(holder) else {
                throw DecodingError.dataCorruptedError(forKey: .leaseOf, in: container, debugDescription: LockCall.holderNameRule)
            }
            self = .leaseOf(holder)
        } else {
            throw DecodingError.dataCorruptedError(
                forKey: .absent, in: container,
                debugDescription: "a precondition is {\"absent\": true}, {\"present\": true}, {\"version\": N} or {\"leaseOf\": HOLDER}"
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .absent: try container.encode(true, forKey: .absent)
        case .atVersion(let version): try container.encode(version, forKey: .version)
        case .present: try container.encode(true, forKey: .present)
        case .leaseOf(let holder): try container.encode(holder, forKey: .leaseOf)
        }
    }
}

extension Change: Codable {
    private enum Operation: String, Codable { case put, remove, mkdir, symlink, mkfifo, setattr, link, mknod, require }
    private enum CodingKeys: String, CodingKey {
        case op, path, size, mode, mtimeNs, inline, blocks, blockSize, precondition, recursive, target, ifPresent, uid, gid, xattrs, file
        case kind, major, minor
    }

    private static func decodeFile(_ container: KeyedDecodingContainer<CodingKeys>) throws -> FilePut {
        guard let content = try FileContent.decodeIfPresent(from: container, inline: .inline, blocks: .blocks, blockSize: .blockSize)
        else {
            throw DecodingError.dataCorruptedError(
                forKey: .inline, in: container, debugDescription: "a put carries 'inline' bytes or 'blocks' and 'blockSize'"
            )
        }
        return FilePut(
            content: content,
            size: try container.decode(Int64.self, forKey: .size),
            mode: try container.decodeIfPresent(UInt32.self, forKey: .mode) ?? 0o644,
            mtimeNanoseconds: try container.decode(Int64.self, forKey: .mtimeNs),
            owner: try Owner.decodeIfPresent(from: container, uid: .uid, gid: .gid),
            fileID: try FileID.decodeIfPresent(from: container, forKey: .file)
        )
    }

    private static func encode(_ file: FilePut, into container: inout KeyedEncodingContainer<CodingKeys>) throws {
        try container.encode(file.size, forKey: .size)
        try container.encode(file.mode, forKey: .mode)
        try container.encode(file.mtimeNanoseconds, forKey: .mtimeNs)
        try file.content.encode(into: &container, inline: .inline, blocks: .blocks, blockSize: .blockSize)
        try file.owner?.encode(into: &container, uid: .uid, gid: .gid)
        try container.encodeIfPresent(file.fileID?.description, forKey: .file)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let path = try container.decode(VolumePath.self, forKey: .path)
        switch try container.decode(Operation.self, forKey: .op) {
        case .put:
            self = .put(path, try Self.decodeFile(container), precondition: try container.decodeIfPresent(Precondition.self, forKey: .precondition))
        case .require:
            self = .require(path, try container.decode(Precondition.self, forKey: .precondition))
        case .mknod:
            let kind = try container.decode(EntryKind.self, forKey: .kind)
            guard kind.isDevice, let number = try DeviceNumber.decodeIfPresent(from: container, major: .major, minor: .minor) else {
                throw DecodingError.dataCorruptedError(forKey: .kind, in: container, debugDescription: "mknod makes a char-device or block-device with 'major' and 'minor'")
            }
            self = .device(
                path, kind, number, mode: try container.decodeIfPresent(UInt32.self, forKey: .mode) ?? 0o600,
                mtimeNanoseconds: try container.decode(Int64.self, forKey: .mtimeNs),
                owner: try Owner.decodeIfPresent(from: container, uid: .uid, gid: .gid))
        case .link:
            let file = try Self.decodeFile(container)
            guard file.fileID != nil else {
                throw DecodingError.dataCorruptedError(forKey: .file, in: container, debugDescription: "a link names the file it joins")
            }
            self = .link(path, file)
        case .remove:
            if try container.decodeIfPresent(Bool.self, forKey: .ifPresent) == true {
                self = .removeIfPresent(path)
                return
            }
            self = .remove(
                path,
                recursive: try container.decodeIfPresent(Bool.self, forKey: .recursive) ?? false,
                precondition: try container.decodeIfPresent(Precondition.self, forKey: .precondition)
            )
        case .mkdir:
            self = .makeDirectory(
                path,
                mode: try container.decodeIfPresent(UInt32.self, forKey: .mode) ?? 0o755,
                mtimeNanoseconds: try container.decode(Int64.self, forKey: .mtimeNs),
                owner: try Owner.decodeIfPresent(from: container, uid: .uid, gid: .gid)
            )
        case .mkfifo:
            self = .fifo(
                path,
                mode: try container.decodeIfPresent(UInt32.self, forKey: .mode) ?? 0o644,
                mtimeNanoseconds: try container.decode(Int64.self, forKey: .mtimeNs),
                owner: try Owner.decodeIfPresent(from: container, uid: .uid, gid: .gid)
            )
        case .setattr:
            self = .setAttributes(
                path,
                AttributeChanges(
                    mode: try container.decodeIfPresent(UInt32.self, forKey: .mode),
                    mtimeNanoseconds: try container.decodeIfPresent(Int64.self, forKey: .mtimeNs),
                    owner: try Owner.decodeIfPresent(from: container, uid: .uid, gid: .gid),
                    extendedAttributes: try ExtendedAttributesWire.decodeIfPresent(from: container, forKey: .xattrs)
                )
            )
        case .symlink:
            self = .symlink(
                path, target: try container.decode(String.self, forKey: .target),
                mtimeNanoseconds: try container.decode(Int64.self, forKey: .mtimeNs),
                owner: try Owner.decodeIfPresent(from: container, uid: .uid, gid: .gid)
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        switch self {
        case .put(_, let file, let precondition):
            try container.encode(Operation.put, forKey: .op)
            try Self.encode(file, into: &container)
            try container.encodeIfPresent(precondition, forKey: .precondition)
        case .link(_, let file):
            try container.encode(Operation.link, forKey: .op)
            try Self.encode(file, into: &container)
        case .require(_, let precondition):
            try container.encode(Operation.require, forKey: .op)
            try container.encode(precondition, forKey: .precondition)
        case .device(_, let kind, let number, let mode, let mtime, let owner):
            try container.encode(Operation.mknod, forKey: .op)
            try container.encode(kind, forKey: .kind)
            try container.encode(number.major, forKey: .major)
            try container.encode(number.minor, forKey: .minor)
            try container.encode(mode, forKey: .mode)
            try container.encode(mtime, forKey: .mtimeNs)
            try owner?.encode(into: &container, uid: .uid, gid: .gid)
        case .remove(_, let recursive, let precondition):
            try container.encode(Operation.remove, forKey: .op)
            try container.encode(recursive, forKey: .recursive)
            try container.encodeIfPresent(precondition, forKey: .precondition)
        case .removeIfPresent:
            try container.encode(Operation.remove, forKey: .op)
            try container.encode(true, forKey: .recursive)
            try container.encode(true, forKey: .ifPresent)
        case .makeDirectory(_, let mode, let mtime, let owner):
            try container.encode(Operation.mkdir, forKey: .op)
            try container.encode(mode, forKey: .mode)
            try container.encode(mtime, forKey: .mtimeNs)
            try owner?.encode(into: &container, uid: .uid, gid: .gid)
        case .fifo(_, let mode, let mtime, let owner):
            try container.encode(Operation.mkfifo, forKey: .op)
            try container.encode(mode, forKey: .mode)
            try container.encode(mtime, forKey: .mtimeNs)
            try owner?.encode(into: &container, uid: .uid, gid: .gid)
        case .setAttributes(_, let changes):
            try container.encode(Operation.setattr, forKey: .op)
            try container.encodeIfPresent(changes.mode, forKey: .mode)
            try container.encodeIfPresent(changes.mtimeNanoseconds, forKey: .mtimeNs)
            try changes.owner?.encode(into: &container, uid: .uid, gid: .gid)
            if let attributes = changes.extendedAttributes { try ExtendedAttributesWire.encode(attributes, into: &container, forKey: .xattrs) }
        case .symlink(_, let target, let mtime, let owner):
            try container.encode(Operation.symlink, forKey: .op)
            try container.encode(target, forKey: .target)
            try container.encode(mtime, forKey: .mtimeNs)
            try owner?.encode(into: &container, uid: .uid, gid: .gid)
        }
    }
}

/// Request and response bodies of the HTTP API (`/v1/`) that are not model types themselves.
public enum API {
    /// Every error response: the ``SiloError/Code`` as `code`, a sentence for people as `message`.
    public struct ErrorBody: Codable, Sendable {
        public var code: String
        public var message: String
        public var paths: [String]?

        public init(_ error: SiloError) {
            self.code = error.code.rawValue
            self.message = error.message
            self.paths = error.paths.isEmpty ? nil : error.paths
        }

        public var error: SiloError {
            SiloError(SiloError.Code(rawValue: code), message, paths: paths ?? [])
        }
    }

    /// The answer to a lock call: another holder's lock in the way, if any.
    public struct LockAnswer: Codable, Sendable {
        public var conflict: FileLock?
        public init(conflict: FileLock?) { self.conflict = conflict }
    }

    public struct VolumeNameBody: Codable, Sendable {
        public var name: VolumeName
        /// Recorded as the author of a new volume's version 0.
        public var author: String?
        /// A new volume's kind; snapshot when absent.
        public var kind: VolumeKind?
        public init(name: VolumeName, author: String? = nil, kind: VolumeKind? = nil) {
            self.name = name
            self.author = author
            self.kind = kind
        }
    }

    public struct Hashes: Codable, Sendable {
        public var hashes: [BlockHash]
        public init(hashes: [BlockHash]) { self.hashes = hashes }
    }

    public struct Missing: Codable, Sendable {
        public var missing: [BlockHash]
        public init(missing: [BlockHash]) { self.missing = missing }
    }

    public struct CommitRequest: Codable, Sendable {
        /// Chosen by the client; a retry with the same id returns the version the first attempt made.
        public var commitID: String
        /// Recorded in the history; the token's name when absent.
        public var author: String?
        public var changes: [Change]

        public init(commitID: String, author: String?, changes: [Change]) {
            self.commitID = commitID
            self.author = author
            self.changes = changes
        }
    }

    public struct TokenRequest: Codable, Sendable {
        /// The workspace the new token sees; the caller's own when absent.
        public var workspace: String?
        public var name: String?
        /// `member` when absent.
        public var role: TokenRole?
        public init(workspace: String?, name: String?, role: TokenRole?) {
            self.workspace = workspace
            self.name = name
            self.role = role
        }
    }

    public struct Token: Codable, Sendable, Hashable {
        public var id: String
        public var workspace: String
        public var name: String
        public var role: TokenRole
        public var createdAtMilliseconds: Int64
        /// The secret itself: only in the answer to the request that created it.
        public var token: String?

        public init(id: String, workspace: String, name: String, role: TokenRole, createdAtMilliseconds: Int64, token: String?) {
            self.id = id
            self.workspace = workspace
            self.name = name
            self.role = role
            self.createdAtMilliseconds = createdAtMilliseconds
            self.token = token
        }
    }
}

/// What a token may do besides reading and writing its workspace's volumes.
public enum TokenRole: String, Codable, Sendable, Hashable, Comparable, CaseIterable {
    /// Volumes of its workspace, nothing else.
    case member
    /// A member that also creates, lists and revokes its own workspace's tokens.
    case admin
    /// Manages every workspace's tokens (and so the workspaces themselves); the server makes the first
    /// one on its first start.
    case serverAdmin = "server-admin"

    /// The number the metadata database keeps.
    public var level: Int {
        switch self {
        case .member: 0
        case .admin: 1
        case .serverAdmin: 2
        }
    }

    public init?(level: Int) {
        guard let role = Self.allCases.first(where: { $0.level == level }) else { return nil }
        self = role
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.level < rhs.level }
}
