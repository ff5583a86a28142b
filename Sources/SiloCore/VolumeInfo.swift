/// A volume as listings show it.
public struct VolumeInfo: Sendable, Hashable, Codable {
    public var name: VolumeName
    public var createdAtMilliseconds: Int64
    public var latestVersion: Version

    public init(name: VolumeName, createdAtMilliseconds: Int64, latestVersion: Version) {
        self.name = name
        self.createdAtMilliseconds = createdAtMilliseconds
        self.latestVersion = latestVersion
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
