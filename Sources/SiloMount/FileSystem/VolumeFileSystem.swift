import Foundation
import SiloClient
import SiloCore
import SiloStore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A file or directory as a mount shows it: its inode and what is there.
public struct Node: Sendable, Equatable {
    public var inode: Inode
    public var entry: Entry
}

/// One name in a directory listing.
public struct DirectoryItem: Sendable, Equatable {
    public var name: String
    public var inode: Inode
    public var kind: EntryKind
}

/// An open file: the handle later calls carry, and how the kernel may read it.
public struct OpenFile: Sendable, Equatable {
    /// 0 for a base file read through the store; else an open local file.
    public var handle: UInt64
    /// The file's bytes have not changed since earlier opens: cached pages stay good.
    public var keepCache: Bool
    /// A descriptor of a local file holding the file's bytes, to read (and, for local files, write)
    /// directly; the caller closes it.
    public var backingFile: Int32?
}

/// What a caching layer above the file system (the kernel's) must forget after a reload.
public protocol CacheInvalidator: AnyObject, Sendable {
    func invalidate(_ inode: Inode)
    func invalidate(name: String, in parent: Inode)
    /// Returns once what was asked so far has reached the caching layer.
    func drain() async
}

/// A volume as a file system: one version (the base), served lazily, and, when writable, a layer of
/// local changes on top of it. The semantics of a mount, apart from FUSE: calls name inodes and
/// names, answer ``SiloError``s, and run on any `VolumeService`, so they are tested on an embedded
/// store without a kernel (`Tests/SiloMountTests`); `VolumeFUSEAdapter` serves them to the kernel.
///
/// Nothing of the base is listed at attach: a directory is listed when first looked into, a file's
/// blocks are fetched when first read. A version never changes, so the kernel may cache the base's
/// names, attributes and pages for as long as it likes. Changes copy a file up into a local file under
/// the mount's scratch directory on first write, and record exactly which paths changed (``Overlay``),
/// so a commit never rescans the volume.
///
/// With a ``ContentCache``, a base file read through from start to end (in any order) is kept there
/// whole, and later opens of it, from this mount or any other using the cache, get that copy as
/// their backing file: reads then run at the local disk's speed without a request each. Local files
/// are handed over the same way, so writes to them pass through too.
public final class VolumeFileSystem: @unchecked Sendable {
    public let service: any VolumeService
    public let volume: VolumeName
    /// Snapshot (changes stay local until committed) or shared (each change is committed as it
    /// happens, and others' show at the next open: see `VolumeFileSystem+Shared.swift`).
    public let kind: VolumeKind
    /// The base version shown, which a reload moves to the latest.
    public var version: Version { base.version }
    public let writable: Bool
    /// Told what to drop from the caches above after a reload.
    public weak var invalidator: (any CacheInvalidator)?
    /// Who paths with no recorded owner belong to (those written before owners were recorded, and
    /// this mount's own changes until it records its callers): the mounting user.
    public let owner: Owner
    /// Where programs' file locks are kept, when not by the kernel: a shared volume's mounts share
    /// one, so a lock holds across mounts and machines. Nil for snapshot mounts.
    public let locks: (any LockService)?

    let inodes = InodeTable()
    /// Files made with no name (`O_TMPFILE`) and not named yet, by inode.
    let nameless = Mutex<[Inode: Nameless]>([:])
    struct Nameless {
        var local: String
        var entry: Entry
        /// Made by `O_TMPFILE` without `O_EXCL`: a `linkat` may name it (a removed file it may not).
        var linkable: Bool
    }
    let base: BaseVersion
    let overlay: Overlay?
    let reader: FileReader
    /// One commit at a time (a background commit and `silo volume commit` may meet).
    let commits = AsyncMutex()
    /// One reload at a time.
    let reloads = AsyncMutex()
    /// Guards `journaled`, the overlay's change count when its journal was last written.
    let journalLock = NSLock()
    var journaled: UInt64 = 0

    /// Mounts `version` of `volume` (resolve "latest" before calling). With `scratch`, a directory of
    /// this mount's own, the mount is writable and keeps its local changes there. With `cache`, files
    /// read through are kept whole there and passed through to on later opens, and a server's blocks
    /// are kept there as they are read. With `locks`, programs' file locks are kept there instead of
    /// by the kernel.
    public init(
        service: any VolumeService, volume: VolumeName, version: Version, scratch: String? = nil, cache: ContentCache? = nil,
        cachedBlocks: Int = 8, locks: (any LockService)? = nil, kind: VolumeKind = .snapshot
    ) throws {
        self.kind = kind
        self.locks = locks
        self.service = service
        self.volume = volume
        self.base = BaseVersion(service: service, volume: volume, version: version)
        self.reader = FileReader(service: service, cache: cache, assembleCopies: true, memoryBlocks: cachedBlocks)
        self.owner = Owner(uid: getuid(), gid: getgid())
        self.overlay = try scratch.map { try Overlay(scratch: $0, seesEveryWrite: kind == .shared) }
        self.writable = scratch != nil
    }

    /// How many paths carry changes not yet committed.
    public var changedPaths: Int { overlay?.changedPaths ?? 0 }

    // MARK: Reading

    /// The node `name` leads to in directory `parent`, counting a reference to it the caller holds
    /// until ``forget(_:references:)``.
    public func lookup(_ name: String, in parent: Inode) async throws -> Node {
        let directory = try inodes.path(of: parent)
        guard let path = try? directory.appending(name) else { throw SiloError(.pathNotFound, "\(name) cannot be a name in \(directory)") }
        var found = try await merged(path)
        if found == nil, kind == .shared {
            // Another mount may have made it since this one last looked: a name closed there is found here.
            try await refresh()
            found = try await merged(path)
        }
        guard let entry = found else {
            throw SiloError(.pathNotFound, "\(name) does not exist in \(directory) in this mount")
        }
        return Node(inode: inodes.reference(path, file: entry.fileID), entry: try await counted(entry))
    }

    /// The caller dropped `count` references it had from lookups.
    public func forget(_ inode: Inode, references count: UInt64) {
        guard inodes.forget(inode, references: count), let file = nameless.withLock({ $0.removeValue(forKey: inode) }) else { return }
        unlink(file.local)  // a file with no name nobody holds any more
    }

    public func node(_ inode: Inode) async throws -> Node {
        if let file = try namelessEntry(inode) { return Node(inode: inode, entry: file) }
        if let ghost = inodes.buried(inode) { return Node(inode: inode, entry: ghost) }
        let path = try inodes.path(of: inode)
        guard let entry = try await merged(path) else { throw Self.notFound(path) }
        return Node(inode: inode, entry: try await counted(entry))
    }

    /// `entry` with its link count as a local disk gives it: a directory has 2 and one more per
    /// directory in it (each one's `..`).
    func counted(_ entry: Entry) async throws -> Entry {
        guard entry.kind == .directory else { return entry }
        var entry = entry
        entry.linkCount = 2 + (try await subdirectoryCount(of: entry.path))
        return entry
    }

    /// The directory holding `inode` (the root's is the root).
    public func parent(of inode: Inode) throws -> Inode {
        inodes.identifier(try inodes.path(of: inode).parent)
    }

    public func readLink(_ inode: Inode) async throws -> String {
        let path = try inodes.path(of: inode)
        guard let entry = try await merged(path), entry.kind == .symlink, let target = entry.symlinkTarget else {
            throw SiloError(.invalidArgument, "\(path) is not a symlink")
        }
        return target
    }

    /// A directory's names in this mount's view, in path order.
    public func list(_ inode: Inode) async throws -> [DirectoryItem] {
        if inodes.buried(inode) != nil { return [] }  // a removed directory someone is still in
        try await refresh()
        let path = try inodes.path(of: inode)
        return try await mergedListing(of: path).map { entry in
            DirectoryItem(name: entry.path.name, inode: inodes.identifier(entry.path, file: entry.fileID), kind: entry.kind)
        }
    }

    /// Opens a file; `writing` for an open that may write, `truncate` for `O_TRUNC`.
    public func open(_ inode: Inode, writing: Bool, truncate: Bool) async throws -> OpenFile {
        try await refresh()  // a shared volume's open sees every close before it (close-to-open)
        let path = try inodes.path(of: inode)
        guard var entry = try await merged(path) else { throw Self.notFound(path) }
        guard entry.kind == .file else { throw SiloError(.isADirectory, "\(path) is a \(entry.kind.rawValue), not a file") }
        let writing = writing || truncate
        guard let overlay else {
            guard !writing else { throw Self.readOnly(path) }
            return OpenFile(handle: 0, keepCache: true, backingFile: try await wholeCopy(of: entry))
        }
        // A shared mount's reload may drop a clean local copy between the copy and the open: then
        // copy what the path holds now.
        for attempt in 0..<5 {
            if attempt > 0 {
                guard let now = try await merged(path), now.kind == .file else { throw Self.notFound(path) }
                entry = now
            }
            if writing {
                if truncate, overlay.localFile(at: path) == nil {
                    _ = try overlay.newFile(at: path, mode: entry.mode, now: Self.now(), owner: entry.owner)  // nothing to copy
                } else {
                    try await copyUp(path, entry)
                }
            }
            if let handle = try overlay.openLocal(at: path, truncate: truncate, writing: writing) {
                return OpenFile(handle: handle, keepCache: false, backingFile: backingFile(handle, in: overlay))
            }
            if !writing { break }
        }
        if writing { throw SiloError(.io, "\(path) could not be opened for writing: its local copy kept being replaced") }
        // A writable mount's base moves on reload, which drops changed files' pages explicitly; a
        // shared mount's moves without one and drops them at every open.
        return OpenFile(handle: 0, keepCache: kind == .snapshot, backingFile: try await wholeCopy(of: entry))
    }

    /// A descriptor of an open local file for the kernel to pass reads and writes through to; none in
    /// a shared mount, whose files are served by Silo: a file another mount changes gets a new local
    /// copy here while older opens hold the old one, and the kernel gives one file one backing file.
    func backingFile(_ handle: UInt64, in overlay: Overlay) -> Int32? {
        kind == .snapshot ? overlay.backingFile(handle) : nil
    }

    /// A read-only descriptor of the cache's whole copy of a base file, if it has one (none in a
    /// shared mount: see ``backingFile(_:in:)``).
    private func wholeCopy(of listed: Entry) async throws -> Int32? {
        guard reader.cache != nil, listed.size > 0, kind == .snapshot else { return nil }
        guard let copy = reader.wholeCopy(of: try await base.withContent(listed)) else { return nil }
        let fd = Glibc.open(copy, O_RDONLY | O_CLOEXEC)
        return fd >= 0 ? fd : nil
    }

    /// Reads a file opened with handle 0 (its bytes come from the store); an open local file is read
    /// with ``readLocal(_:offset:size:)``.
    public func read(_ inode: Inode, offset: UInt64, size: Int) async throws -> [UInt8] {
        let path = try inodes.path(of: inode)
        var found = inodes.buried(inode)  // a removed file still open reads as it was
        if found == nil { found = try await merged(path) }
        guard let listed = found else { throw Self.notFound(path) }
        let entry = try await base.withContent(listed)
        guard offset < UInt64(entry.size), size > 0 else { return [] }
        return try await reader.read(entry, Int64(offset)..<min(entry.size, Int64(offset) + Int64(size)))
    }

    /// Reads an open local file (a handle other than 0).
    public func readLocal(_ handle: UInt64, offset: UInt64, size: Int) throws -> [UInt8] {
        guard let overlay else { throw SiloError.local("no open file \(handle)", errno: EBADF) }
        return try overlay.read(handle, offset: offset, size: size)
    }

    public func release(_ inode: Inode, handle: UInt64) {
        if handle != 0 { overlay?.close(handle, at: try? inodes.path(of: inode)) }
    }

    /// After the last close of a file written in a shared mount: what the close committed is now
    /// the volume's, and this mount lets go of its copy, so others' later writes show here.
    /// Nothing is done while another descriptor still writes the file: its own close commits it (a
    /// commit now could take its bytes half rewritten).
    public func settle(_ inode: Inode) async throws {
        guard kind == .shared, let overlay, let path = try? inodes.path(of: inode), let local = overlay.localFile(at: path),
            !overlay.hasWriters(local)
        else { return }
        try await publish([path], conflict: SiloError(.io, "\(path) could not be committed"))
    }

    /// The figures of the disk holding this mount's local changes; nil for a read-only mount, which has
    /// no free space (figures for its size would need a walk of the tree).
    public func diskFigures() throws -> statvfs? {
        guard let overlay else { return nil }
        var figures = statvfs()
        guard statvfs(overlay.scratch, &figures) == 0 else { throw SiloError.local("cannot read the figures of \(overlay.scratch)") }
        return figures
    }

    static func now() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    static func notFound(_ path: VolumePath) -> SiloError {
        SiloError(.pathNotFound, "\(path) does not exist in this mount")
    }

    static func readOnly(_ path: VolumePath) -> SiloError {
        SiloError(.readOnly, "\(path) cannot change: this mount is read-only")
    }
}
