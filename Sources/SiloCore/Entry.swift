/// What a path in a volume is.
public enum EntryKind: String, Sendable, Codable, Hashable {
    case file
    case directory
    case symlink
    /// A named pipe: committed as an entry (no content); processes meet through it in one mount.
    case fifo
    /// A Unix socket bound in a mount: it lives in that mount only and is never committed.
    case socket
    /// A device node (made by root only; committed as an entry with its device number, as tar keeps
    /// one; mounts are `nodev`, so it cannot be opened through them).
    case characterDevice = "char-device"
    case blockDevice = "block-device"

    public var isDevice: Bool { self == .characterDevice || self == .blockDevice }
}

/// A device node's number: which driver (`major`) and which of its devices (`minor`).
public struct DeviceNumber: Sendable, Hashable, CustomStringConvertible {
    public var major: UInt32
    public var minor: UInt32

    public init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }

    /// From glibc's 64-bit `dev_t` layout (`makedev`).
    public init(dev: UInt64) {
        major = UInt32(truncatingIfNeeded: (dev >> 32) & 0xffff_f000 | (dev >> 8) & 0xfff)
        minor = UInt32(truncatingIfNeeded: (dev >> 12) & 0xffff_ff00 | dev & 0xff)
    }

    /// In glibc's 64-bit `dev_t` layout, as `mknod` takes it.
    public var dev: UInt64 {
        let major = UInt64(major), minor = UInt64(minor)
        return (major & 0xffff_f000) << 32 | (major & 0xfff) << 8 | (minor & 0xffff_ff00) << 12 | minor & 0xff
    }

    public var description: String { "\(major),\(minor)" }
}

/// Where a file's bytes live: inline in the metadata (small files) or as a list of blocks.
public enum FileContent: Sendable, Hashable {
    /// The whole file, kept in the metadata row; for files up to ``FileContent/inlineLimit`` bytes.
    case inline([UInt8])
    /// Blocks of `blockSize` bytes each (the last one shorter), in file order.
    case blocks([BlockHash], blockSize: Int)

    /// Files up to this size are kept inline: a directory of small files then costs one metadata
    /// transaction instead of a block file (and an fsync) per file.
    public static let inlineLimit = 16 * 1024

    public var blockHashes: [BlockHash] {
        if case .blocks(let hashes, _) = self { return hashes }
        return []
    }
}

/// Who a file, directory or symlink belongs to: numeric user and group ids, as the kernel keeps them.
public struct Owner: Sendable, Hashable, Codable {
    public var uid: UInt32
    public var gid: UInt32

    public init(uid: UInt32, gid: UInt32) {
        self.uid = uid
        self.gid = gid
    }

    public static let root = Owner(uid: 0, gid: 0)
}

/// One file under several names (hard links): the names of a volume that carry the same id are one
/// file, sharing content and attributes. Files under one name carry none.
public struct FileID: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    /// A new id, unlikely to meet another in any volume (64 random bits).
    public static func random() -> FileID { FileID(UInt64.random(in: 1...UInt64.max)) }

    /// The id written as 16 hex digits, as it travels and is shown.
    public init?(hex: String) {
        guard hex.utf8.count == 16, let value = UInt64(hex, radix: 16) else { return nil }
        self.init(value)
    }

    public var description: String {
        let digits = String(rawValue, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

/// A path's extended attributes: values by name.
public typealias ExtendedAttributes = [String: [UInt8]]

/// The limits a path's extended attributes keep, as ext4 with 4 KiB blocks does.
public enum ExtendedAttributeLimits {
    /// Longest name, in bytes, namespace prefix included.
    public static let nameBytes = 255
    /// What one path's attributes may take, counted as ext4 lays them out in its attribute block
    /// (4,096 bytes less its 32-byte header and 4-byte end): see ``cost(name:value:)``.
    public static let totalBytes = 4060
    /// The namespaces a volume keeps (`system.*`, the ACLs, is not one).
    public static let namespaces = ["user.", "trusted.", "security."]

    /// What one attribute takes of ``totalBytes``: a 16-byte entry, its name without the namespace
    /// prefix and its value, each rounded up to 4 bytes (so a single `user.x` holds up to 4,040 bytes).
    public static func cost(name: String, value: [UInt8]) -> Int {
        let prefix = namespaces.first { name.hasPrefix($0) }?.utf8.count ?? 0
        func rounded(_ count: Int) -> Int { (count + 3) / 4 * 4 }
        return 16 + rounded(name.utf8.count - prefix) + rounded(value.count)
    }

    /// Checks a set of attributes against the limits, saying which one it breaks.
    public static func validate(_ attributes: ExtendedAttributes, at path: VolumePath) throws(SiloError) {
        var total = 0
        for (name, value) in attributes {
            let bytes = name.utf8.count
            guard namespaces.contains(where: { name.hasPrefix($0) && bytes > $0.utf8.count }), bytes <= nameBytes, !name.utf8.contains(0) else {
                throw SiloError(.invalidArgument, "\(path): '\(name)' is not an extended attribute name a volume keeps (user.*, trusted.*, security.*, at most \(nameBytes) bytes)")
            }
            total += cost(name: name, value: value)
        }
        guard total <= totalBytes else {
            throw SiloError(.noSpace, "\(path): its extended attributes take \(total) bytes, more than the \(totalBytes) a path may have")
        }
    }
}

/// One path of a volume at some version, as a listing or a stat shows it.
public struct Entry: Sendable, Hashable {
    public var path: VolumePath
    public var kind: EntryKind
    /// Bytes in a file; the target's length for a symlink; 0 for a directory.
    public var size: Int64
    /// Permission bits (`0o644`, `0o755`, …).
    public var mode: UInt32
    /// Modification time, nanoseconds since the Unix epoch.
    public var mtimeNanoseconds: Int64
    /// The version whose commit last wrote this path: what `if the path is at version N` compares against.
    public var version: Version
    public var content: FileContent?
    public var symlinkTarget: String?
    /// Who it belongs to; nil where the volume recorded no owner (paths written before owners were
    /// recorded, and directories a commit made as parents): a mount then shows its own user.
    public var owner: Owner?
    /// Extended attributes (`user.*`, `trusted.*`, `security.*`), by name.
    public var extendedAttributes: ExtendedAttributes
    /// The file this name is one of, for a file with several names (hard links); nil for one name.
    public var fileID: FileID?
    /// How many names the file has at this version (1 for a file with no ``fileID``).
    public var linkCount: Int
    /// A device node's number; nil for every other kind.
    public var device: DeviceNumber?

    public init(
        path: VolumePath,
        kind: EntryKind,
        size: Int64,
        mode: UInt32,
        mtimeNanoseconds: Int64,
        version: Version,
        content: FileContent? = nil,
        symlinkTarget: String? = nil,
        owner: Owner? = nil,
        extendedAttributes: ExtendedAttributes = [:],
        fileID: FileID? = nil,
        linkCount: Int = 1,
        device: DeviceNumber? = nil
    ) {
        self.device = device
        self.fileID = fileID
        self.linkCount = linkCount
        self.owner = owner
        self.extendedAttributes = extendedAttributes
        self.path = path
        self.kind = kind
        self.size = size
        self.mode = mode
        self.mtimeNanoseconds = mtimeNanoseconds
        self.version = version
        self.content = content
        self.symlinkTarget = symlinkTarget
    }
}

/// How a file splits into blocks.
public struct BlockLayout: Sendable, Hashable {
    public static let defaultBlockSize = 8 * 1024 * 1024
    /// Block sizes a store accepts: bounded, so a block is a bounded request and a bounded buffer.
    public static let allowedBlockSizes = 1...(64 * 1024 * 1024)

    public var blockSize: Int
    public init(blockSize: Int = BlockLayout.defaultBlockSize) {
        precondition(blockSize > 0)
        self.blockSize = blockSize
    }

    /// The indexes of the blocks that hold bytes `range` of a file.
    public func blocks(covering range: Range<Int64>) -> ClosedRange<Int> {
        let first = Int(range.lowerBound / Int64(blockSize))
        let last = Int((max(range.upperBound, range.lowerBound + 1) - 1) / Int64(blockSize))
        return first...last
    }

    /// How many blocks hold a file of `size` bytes (`size` ≥ 0). Rounds up without adding, so a size
    /// near `Int64.max` cannot overflow.
    public func blockCount(forSize size: Int64) -> Int {
        let (whole, rest) = size.quotientAndRemainder(dividingBy: Int64(blockSize))
        return Int(whole) + (rest > 0 ? 1 : 0)
    }

    /// The length block `index` of a file of `size` bytes must have: `blockSize`, except the last
    /// block, which holds the rest. Index and size are those a validated file put carries.
    public func length(ofBlock index: Int, inFileOf size: Int64) -> Int {
        let start = Int64(index) * Int64(blockSize)
        return Int(min(Int64(blockSize), size - start))
    }
}
