#if canImport(Glibc)
import Glibc
#endif

/// An error a file system operation answers with: an errno value the kernel passes to the caller.
public struct FUSEError: Error, Sendable, Equatable {
    public var errno: Int32
    public init(_ errno: Int32) { self.errno = errno }

    public static let notFound = FUSEError(ENOENT)
    public static let notSupported = FUSEError(ENOSYS)
    public static let readOnly = FUSEError(EROFS)
    public static let notADirectory = FUSEError(ENOTDIR)
    public static let isADirectory = FUSEError(EISDIR)
    public static let io = FUSEError(EIO)
}

/// What `stat` shows of a node.
public struct FUSEAttributes: Sendable, Equatable {
    public var node: UInt64
    public var size: UInt64
    /// File type and permission bits, as in `st_mode` (`S_IFREG | 0o644`, …).
    public var mode: UInt32
    public var links: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var mtimeNanoseconds: Int64
    /// A device node's number, as FUSE carries it (`new_encode_dev`: 12 bits of major, 20 of minor).
    public var device: UInt32

    public init(
        node: UInt64, size: UInt64, mode: UInt32, links: UInt32 = 1, uid: UInt32 = 0, gid: UInt32 = 0, mtimeNanoseconds: Int64, device: UInt32 = 0
    ) {
        self.device = device
        self.node = node
        self.size = size
        self.mode = mode
        self.links = links
        self.uid = uid
        self.gid = gid
        self.mtimeNanoseconds = mtimeNanoseconds
    }
}

/// The answer to a lookup: the node a name leads to, and how long the kernel may cache it.
public struct FUSEEntry: Sendable, Equatable {
    public var attributes: FUSEAttributes
    /// Seconds the kernel may keep the name → node mapping and the attributes without asking again.
    public var entryTimeout: Double
    public var attributeTimeout: Double

    public init(attributes: FUSEAttributes, entryTimeout: Double, attributeTimeout: Double) {
        self.attributes = attributes
        self.entryTimeout = entryTimeout
        self.attributeTimeout = attributeTimeout
    }
}

/// One name in a directory listing.
public struct FUSEDirectoryEntry: Sendable, Equatable {
    public var node: UInt64
    public var name: String
    /// `st_mode`'s type bits (`S_IFDIR`, `S_IFREG`, `S_IFLNK`).
    public var type: UInt32

    public init(node: UInt64, name: String, type: UInt32) {
        self.node = node
        self.name = name
        self.type = type
    }
}

/// The answer to an open.
public struct FUSEOpened: Sendable, Equatable {
    /// A handle the file system chooses; later reads and the release carry it.
    public var handle: UInt64
    /// Keep pages cached from earlier opens (the file has not changed since).
    public var keepCache: Bool
    /// A descriptor of a local regular file that holds this file's bytes (opened for writing too if
    /// the open may write). The session hands it to the kernel, which then reads and writes it
    /// directly, without a request per read (passthrough), when the connection allows it; either
    /// way the session closes the descriptor. The file system must still answer reads and writes of
    /// the handle, for opens that are not passed through.
    public var backingFile: Int32?

    public init(handle: UInt64, keepCache: Bool, backingFile: Int32? = nil) {
        self.handle = handle
        self.keepCache = keepCache
        self.backingFile = backingFile
    }
}

/// Figures `statfs` shows.
public struct FUSEStatistics: Sendable, Equatable {
    public var blockSize: UInt32
    public var blocks: UInt64
    public var freeBlocks: UInt64
    public var files: UInt64
    public var freeFiles: UInt64

    public init(blockSize: UInt32, blocks: UInt64, freeBlocks: UInt64, files: UInt64, freeFiles: UInt64) {
        self.blockSize = blockSize
        self.blocks = blocks
        self.freeBlocks = freeBlocks
        self.files = files
        self.freeFiles = freeFiles
    }
}

/// What a SETATTR asks to change; nil fields stay as they are. The kernel has checked the caller may
/// (mounts use `default_permissions`): only root changes owners, an owner may change the group to
/// one of its own, and a change of owner comes with the mode that clears set-user-ID and set-group-ID.
public struct FUSEAttributeChanges: Sendable, Equatable {
    /// Truncate or extend to this size.
    public var size: UInt64?
    /// Permission bits only (the type cannot change).
    public var mode: UInt32?
    public var mtimeNanoseconds: Int64?
    /// New owner and group ids (chown, chgrp).
    public var uid: UInt32?
    public var gid: UInt32?
    /// The handle of the open file the change came through (ftruncate), if any.
    public var handle: UInt64?

    public init(
        size: UInt64? = nil, mode: UInt32? = nil, mtimeNanoseconds: Int64? = nil, uid: UInt32? = nil, gid: UInt32? = nil, handle: UInt64? = nil
    ) {
        self.size = size
        self.mode = mode
        self.mtimeNanoseconds = mtimeNanoseconds
        self.uid = uid
        self.gid = gid
        self.handle = handle
    }
}

/// The process a request comes from, as the kernel reports it.
public struct FUSECaller: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: UInt32

    public init(uid: UInt32, gid: UInt32, pid: UInt32) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
    }
}

/// The operations a file system answers; nodes are numbers the file system hands out in lookups
/// (node 1 is the root). Each call runs on one of the session's request threads; an operation this
/// protocol lists but a file system leaves at its default answers ENOSYS (or EROFS for changes).
///
/// This is the kernel protocol's shape without Silo's semantics; `SiloMount` gives it those.
public protocol FUSEFileSystem: Sendable {
    func lookup(parent: UInt64, name: String) throws -> FUSEEntry
    /// The kernel dropped `lookups` references to `node`, which it had from lookups.
    func forget(node: UInt64, lookups: UInt64)
    func attributes(of node: UInt64) throws -> FUSEAttributes
    /// How long the kernel may cache `node`'s attributes.
    func attributeTimeout(of node: UInt64) -> Double
    func readLink(_ node: UInt64) throws -> String
    /// Every entry of a directory, `.` and `..` included; the session pages through it.
    func listDirectory(_ node: UInt64) throws -> [FUSEDirectoryEntry]
    func open(_ node: UInt64, flags: Int32) throws -> FUSEOpened
    func read(_ node: UInt64, handle: UInt64, offset: UInt64, size: Int) throws -> [UInt8]
    func release(_ node: UInt64, handle: UInt64)
    func statistics() throws -> FUSEStatistics

    // Changes: a read-only file system leaves these at their defaults, which answer EROFS.
    func setAttributes(of node: UInt64, _ changes: FUSEAttributeChanges) throws -> FUSEAttributes
    /// Creates and opens a regular file (`O_CREAT`) for `caller`, who owns it; `flags` are the open flags.
    func create(parent: UInt64, name: String, mode: UInt32, flags: Int32, caller: FUSECaller) throws -> (FUSEEntry, FUSEOpened)
    func makeDirectory(parent: UInt64, name: String, mode: UInt32, caller: FUSECaller) throws -> FUSEEntry
    /// Creates a regular file with no name (`O_TMPFILE`) and opens it; a `link` may name it later.
    func createNameless(parent: UInt64, mode: UInt32, flags: Int32, caller: FUSECaller) throws -> (FUSEEntry, FUSEOpened)
    func makeSymlink(parent: UInt64, name: String, target: String, caller: FUSECaller) throws -> FUSEEntry
    /// mknod of a named pipe or a Unix socket: `mode` carries the type (`S_IFIFO`, `S_IFSOCK`) and the
    /// permission bits; the kernel does their I/O. (Regular files come through ``create``.)
    func makeNode(parent: UInt64, name: String, mode: UInt32, device: UInt32, caller: FUSECaller) throws -> FUSEEntry
    /// unlink (`directory` false) or rmdir (`directory` true).
    func remove(parent: UInt64, name: String, directory: Bool) throws
    /// Gives `node` (a file) another name, `name` in `parent` (a hard link).
    func link(_ node: UInt64, parent: UInt64, name: String) throws -> FUSEEntry
    /// `flags` are rename2's (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`); 0 for a plain rename.
    func rename(parent: UInt64, name: String, to newParent: UInt64, newName: String, flags: UInt32, caller: FUSECaller) throws
    /// Writes `bytes` at `offset`; returns how many were written.
    func write(_ node: UInt64, handle: UInt64, offset: UInt64, bytes: UnsafeRawBufferPointer) throws -> Int
    func fsync(_ node: UInt64, handle: UInt64) throws
    /// A `close` of a descriptor of an open file (FLUSH; several per open with dup'd descriptors).
    func flush(_ node: UInt64, handle: UInt64) throws
    /// fallocate(2) on an open file: `mode` is the call's (keep size, punch hole, zero range…).
    func allocate(_ node: UInt64, handle: UInt64, offset: UInt64, length: UInt64, mode: UInt32) throws

    // Extended attributes; left at their defaults, the kernel learns from ENOSYS that there are none.
    /// The value of attribute `name` (ENODATA when it has none).
    func extendedAttribute(_ node: UInt64, name: String) throws -> [UInt8]
    /// The names of the node's attributes that `caller` may see.
    func extendedAttributeNames(_ node: UInt64, caller: FUSECaller) throws -> [String]
    /// Sets attribute `name`; `flags` are setxattr's (`XATTR_CREATE`, `XATTR_REPLACE`).
    func setExtendedAttribute(_ node: UInt64, name: String, value: [UInt8], flags: Int32) throws
    func removeExtendedAttribute(_ node: UInt64, name: String) throws

    // Locks: only a file system that keeps them itself (across machines, say) says so; otherwise the
    // kernel keeps every lock on the machine and never asks.
    var handlesLocks: Bool { get }
    /// A lock held by another owner that `lock` would conflict with (F_GETLK), or nil.
    func conflictingLock(_ node: UInt64, handle: UInt64, _ lock: FUSELock) throws -> FUSELock?
    /// Takes, changes or releases `lock`. With `wait`, waits while another owner holds a conflicting
    /// lock: the call is answered later, holds no request thread meanwhile, and is cancelled when the
    /// waiting program is interrupted (throw `CancellationError`). Without it, a conflict is EAGAIN.
    func setLock(_ node: UInt64, handle: UInt64, _ lock: FUSELock, wait: Bool) async throws
}

extension FUSEFileSystem {
    public func forget(node: UInt64, lookups: UInt64) {}
    public func attributeTimeout(of node: UInt64) -> Double { 1 }
    public func readLink(_ node: UInt64) throws -> String { throw FUSEError(EINVAL) }
    public func release(_ node: UInt64, handle: UInt64) {}
    public func statistics() throws -> FUSEStatistics {
        FUSEStatistics(blockSize: 4096, blocks: 0, freeBlocks: 0, files: 0, freeFiles: 0)
    }
    public func setAttributes(of node: UInt64, _ changes: FUSEAttributeChanges) throws -> FUSEAttributes {
        throw FUSEError.readOnly
    }
    public func create(parent: UInt64, name: String, mode: UInt32, flags: Int32, caller: FUSECaller) throws -> (FUSEEntry, FUSEOpened) {
        throw FUSEError.readOnly
    }
    public func makeDirectory(parent: UInt64, name: String, mode: UInt32, caller: FUSECaller) throws -> FUSEEntry { throw FUSEError.readOnly }
    public func createNameless(parent: UInt64, mode: UInt32, flags: Int32, caller: FUSECaller) throws -> (FUSEEntry, FUSEOpened) {
        throw FUSEError.notSupported
    }
    public func makeSymlink(parent: UInt64, name: String, target: String, caller: FUSECaller) throws -> FUSEEntry {
        throw FUSEError.readOnly
    }
    public func makeNode(parent: UInt64, name: String, mode: UInt32, device: UInt32, caller: FUSECaller) throws -> FUSEEntry { throw FUSEError(EPERM) }
    public func remove(parent: UInt64, name: String, directory: Bool) throws { throw FUSEError.readOnly }
    public func link(_ node: UInt64, parent: UInt64, name: String) throws -> FUSEEntry { throw FUSEError(EPERM) }
    public func rename(parent: UInt64, name: String, to newParent: UInt64, newName: String, flags: UInt32, caller: FUSECaller) throws {
        throw FUSEError.readOnly
    }
    public func write(_ node: UInt64, handle: UInt64, offset: UInt64, bytes: UnsafeRawBufferPointer) throws -> Int {
        throw FUSEError.readOnly
    }
    public func fsync(_ node: UInt64, handle: UInt64) throws {}
    public func flush(_ node: UInt64, handle: UInt64) throws {}
    public func allocate(_ node: UInt64, handle: UInt64, offset: UInt64, length: UInt64, mode: UInt32) throws { throw FUSEError.notSupported }
    public func extendedAttribute(_ node: UInt64, name: String) throws -> [UInt8] { throw FUSEError.notSupported }
    public func extendedAttributeNames(_ node: UInt64, caller: FUSECaller) throws -> [String] { throw FUSEError.notSupported }
    public func setExtendedAttribute(_ node: UInt64, name: String, value: [UInt8], flags: Int32) throws { throw FUSEError.notSupported }
    public func removeExtendedAttribute(_ node: UInt64, name: String) throws { throw FUSEError.notSupported }
    public var handlesLocks: Bool { false }
    public func conflictingLock(_ node: UInt64, handle: UInt64, _ lock: FUSELock) throws -> FUSELock? { throw FUSEError.notSupported }
    public func setLock(_ node: UInt64, handle: UInt64, _ lock: FUSELock, wait: Bool) async throws { throw FUSEError.notSupported }
}

/// What a file system can ask of the kernel outside any request: to drop what it cached.
public protocol FUSEInvalidator: AnyObject, Sendable {
    func invalidate(node: UInt64)
    func invalidate(entry name: String, in parent: UInt64)
}

extension FUSEConnection: FUSEInvalidator {}
extension FUSESession: FUSEInvalidator {}
