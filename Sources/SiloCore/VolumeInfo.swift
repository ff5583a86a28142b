/// What kind of volume it is, which decides what its mounts promise (`docs/semantics.md`).
public enum VolumeKind: String, Sendable, Codable, Hashable {
    /// The seed's `Volume`: a version at a time; a mount's changes stay local until committed, and
    /// others' commits show after a reload.
    case snapshot
    /// The seed's `SharedVolume` (`NetworkFileSystem`): every close, fsync, rename, unlink or mkdir
    /// in a mount is a commit of its own, which every other mount sees at its next open.
    case shared
}

/// A volume as listings show it.
public struct VolumeInfo: Sendable, Hashable, Codable {
    public var name: VolumeName
    public var createdAtMilliseconds: Int64
    public var latestVersion: Version
    public var kind: VolumeKind

    public init(name: VolumeName, createdAtMilliseconds: Int64, latestVersion: Version, kind: VolumeKind = .snapshot) {
        self.name = name
        self.createdAtMilliseconds = createdAtMilliseconds
        self.latestVersion = latestVersion
        self.kind = kind
    }

    private enum CodingKeys: String, CodingKey { case name, createdAtMilliseconds, latestVersion, kind }

    /// A volume described without a kind (by a server from before kinds) is a snapshot volume.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(VolumeName.self, forKey: .name)
        createdAtMilliseconds = try container.decode(Int64.self, forKey: .createdAtMilliseconds)
        latestVersion = try container.decode(Version.self, forKey: .latestVersion)
        kind = try container.decodeIfPresent(VolumeKind.self, forKey: .kind) ?? .snapshot
    }
}

/// One version in a volume's history, with the summary of the commit that made it.
public struct VersionInfo: Sendable, Hashable, Codable {
    public var version: Version
    public var createdAtMilliseconds: Int64
    public var author: String
    public var filesAdded: Int64
    public var filesChanged: Int64
    public var filesRemoved: Int64
    /// Bytes of file content the commit wrote (new and replaced files).
    public var bytesAdded: Int64

    public init(
        version: Version,
        createdAtMilliseconds: Int64,
        author: String,
        filesAdded: Int64,
        filesChanged: Int64,
        filesRemoved: Int64,
        bytesAdded: Int64
    ) {
        self.version = version
        self.createdAtMilliseconds = createdAtMilliseconds
        self.author = author
        self.filesAdded = filesAdded
        self.filesChanged = filesChanged
        self.filesRemoved = filesRemoved
        self.bytesAdded = bytesAdded
    }
}

/// How one path differs between two versions.
public struct PathChange: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable {
        case added
        case modified
        case removed
    }

    public var path: VolumePath
    public var kind: Kind
    public var entryKind: EntryKind

    public init(path: VolumePath, kind: Kind, entryKind: EntryKind) {
        self.path = path
        self.kind = kind
        self.entryKind = entryKind
    }
}

/// The result of applying a commit.
public struct CommitResult: Sendable, Hashable, Codable {
    public var version: VersionInfo
    /// True when the commit id had already been applied and this is that earlier result.
    public var wasRetry: Bool

    public init(version: VersionInfo, wasRetry: Bool) {
        self.version = version
        self.wasRetry = wasRetry
    }
}
