/// A condition on a path that must hold at the moment a commit applies, or the whole commit fails.
public enum Precondition: Sendable, Hashable {
    /// The path must not exist.
    case absent
    /// The path must exist and have been last written by version `N`.
    case atVersion(Version)
    /// The path must exist, whoever wrote it last.
    case present
    /// The lock holder `holder` (a shared volume's mount) must still hold its lease: the fence that
    /// keeps a holder whose lease lapsed, and whose locks went to others, from overwriting what the next
    /// holder wrote under them.
    case leaseOf(String)
}

/// New attributes for a path; nil fields stay as they are.
public struct AttributeChanges: Sendable, Hashable {
    /// Permission bits (ignored for symlinks, whose mode is always 0o777).
    public var mode: UInt32?
    public var mtimeNanoseconds: Int64?
    public var owner: Owner?
    /// The whole new set of extended attributes (an empty set removes them all).
    public var extendedAttributes: ExtendedAttributes?

    public init(mode: UInt32? = nil, mtimeNanoseconds: Int64? = nil, owner: Owner? = nil, extendedAttributes: ExtendedAttributes? = nil) {
        self.mode = mode
        self.mtimeNanoseconds = mtimeNanoseconds
        self.owner = owner
        self.extendedAttributes = extendedAttributes
    }
}

/// The contents of a file being put.
public struct FilePut: Sendable, Hashable {
    public var content: FileContent
    public var size: Int64
    public var mode: UInt32
    public var mtimeNanoseconds: Int64
    /// Who the file belongs to; nil records none.
    public var owner: Owner?
    /// The file this name is one of (hard links): every other name with this id takes the content and
    /// attributes put here. Nil for a file of one name.
    public var fileID: FileID?

    public init(content: FileContent, size: Int64, mode: UInt32 = 0o644, mtimeNanoseconds: Int64, owner: Owner? = nil, fileID: FileID? = nil) {
        self.owner = owner
        self.fileID = fileID
        self.content = content
        self.size = size
        self.mode = mode
        self.mtimeNanoseconds = mtimeNanoseconds
    }

    /// Checks that the content can hold `size` bytes: inline bytes of exactly that length, or as many
    /// blocks as `size` needs at an allowed block size.
    public func validate(at path: VolumePath) throws(SiloError) {
        guard size >= 0 else {
            throw SiloError(.invalidArgument, "file \(path) has a negative size (\(size))")
        }
        switch content {
        case .inline(let bytes):
            guard bytes.count == size, size <= FileContent.inlineLimit else {
                throw SiloError(
                    .invalidArgument,
                    "file \(path) says \(size) bytes but carries \(bytes.count) inline (at most \(FileContent.inlineLimit))"
                )
            }
        case .blocks(let hashes, let blockSize):
            guard BlockLayout.allowedBlockSizes.contains(blockSize) else {
                throw SiloError(.invalidArgument, "file \(path) has block size \(blockSize), outside \(BlockLayout.allowedBlockSizes)")
            }
            let needed = BlockLayout(blockSize: blockSize).blockCount(forSize: size)
            guard hashes.count == needed else {
                throw SiloError(
                    .invalidArgument, "file \(path) says \(size) bytes, which is \(needed) block(s), but lists \(hashes.count)"
                )
            }
        }
    }
}

/// One change in a ``Changeset``; changes apply in order.
public enum Change: Sendable, Hashable {
    /// Writes a file, replacing a file or symlink at that path; creates missing parent directories.
    case put(VolumePath, FilePut, precondition: Precondition? = nil)
    /// Removes a path; a non-empty directory only with `recursive`, and then everything it holds when
    /// the removal applies.
    case remove(VolumePath, recursive: Bool, precondition: Precondition? = nil)
    /// Removes a path and everything beneath it if it exists when the commit applies, and does nothing
    /// otherwise: what a mount sends for a path it deleted, which another writer may have removed first.
    case removeIfPresent(VolumePath)
    /// Creates a directory (and missing parents, which record no owner); an existing directory is left
    /// as it is.
    case makeDirectory(VolumePath, mode: UInt32 = 0o755, mtimeNanoseconds: Int64, owner: Owner? = nil)
    /// Creates or replaces a symbolic link.
    case symlink(VolumePath, target: String, mtimeNanoseconds: Int64, owner: Owner? = nil)
    /// Creates or replaces a named pipe.
    case fifo(VolumePath, mode: UInt32 = 0o644, mtimeNanoseconds: Int64, owner: Owner? = nil)
    /// Creates or replaces a device node (`kind` is a device kind).
    case device(VolumePath, EntryKind, DeviceNumber, mode: UInt32, mtimeNanoseconds: Int64, owner: Owner? = nil)
    /// Changes a path's attributes and nothing else, on top of whatever it holds when the commit
    /// applies (a newer commit's content stays); does nothing if the path is gone by then. On a file of
    /// several names, every name takes them.
    case setAttributes(VolumePath, AttributeChanges)
    /// Makes `path` another name of the file `file.fileID` names (a hard link): if the volume holds the
    /// file under some name when the commit applies, the new name shares what it holds then (a newer
    /// commit's content stays); if not, `file` is put there as given. Replaces a file at `path`.
    case link(VolumePath, FilePut)
    /// Changes nothing: the commit applies only if `precondition` holds at `path` when it lands (what
    /// makes a shared volume's mkdir, O_EXCL create, link or rename atomic across its mounts).
    case require(VolumePath, Precondition)

    public var path: VolumePath {
        switch self {
        case .put(let path, _, _), .remove(let path, _, _), .removeIfPresent(let path), .makeDirectory(let path, _, _, _),
            .symlink(let path, _, _, _), .fifo(let path, _, _, _), .setAttributes(let path, _), .link(let path, _),
            .device(let path, _, _, _, _, _), .require(let path, _):
            path
        }
    }
}

/// What one commit does to a volume: applied on top of the volume's latest version, atomically.
public struct Changeset: Sendable, Hashable {
    public var changes: [Change]
    public init(_ changes: [Change] = []) { self.changes = changes }
    public var isEmpty: Bool { changes.isEmpty }

    /// Checks every file's content against its size (see ``FilePut/validate(at:)``) and every set of
    /// extended attributes against ``ExtendedAttributeLimits``.
    public func validate() throws(SiloError) {
        for change in changes {
            switch change {
            case .put(let path, let file, _): try file.validate(at: path)
            case .link(let path, let file):
                try file.validate(at: path)
                guard file.fileID != nil else { throw SiloError(.invalidArgument, "link \(path) names no file to join") }
            case .device(let path, let kind, _, _, _, _):
                guard kind.isDevice else { throw SiloError(.invalidArgument, "\(path): a \(kind.rawValue) is not a device node") }
            default: break
            }
        }
        for case .setAttributes(let path, let changes) in changes {
            if let attributes = changes.extendedAttributes { try ExtendedAttributeLimits.validate(attributes, at: path) }
        }
    }

    /// Every block the changeset's files are made of, each once.
    public var blockHashes: Set<BlockHash> {
        var hashes = Set<BlockHash>()
        for change in changes {
            switch change {
            case .put(_, let file, _), .link(_, let file): hashes.formUnion(file.content.blockHashes)
            default: break
            }
        }
        return hashes
    }
}

/// Who commits and how to recognise a retry.
public struct CommitOptions: Sendable, Hashable {
    /// Recorded in the version's history (a client id, a user name).
    public var author: String
    /// Chosen by the client; a commit with an id the volume has already applied returns that version
    /// again instead of applying twice.
    public var commitID: String?

    public init(author: String, commitID: String? = nil) {
        self.author = author
        self.commitID = commitID
    }
}
