import Foundation
import SiloClient
import SiloCore
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// A volume as a file system: one version (the base), served lazily, and, when writable, a layer of
/// local changes on top of it.
///
/// Nothing of the base is listed at attach: a directory is listed when first looked into, a file's
/// blocks are fetched when first read. A version never changes, so the kernel may cache the base's
/// names, attributes and pages for as long as it likes. Changes copy a file up into a local file under
/// the mount's scratch directory on first write, and record exactly which paths changed (``Overlay``),
/// so a commit never rescans the volume.
///
/// With a ``ContentCache``, a base file read through from start to end (in any order) is kept there
/// whole, and later opens of it, from this mount or any other using the cache, hand that copy to the
/// kernel as the open's backing file: reads then run at the local disk's speed without a request
/// each. Local files are handed over the same way, so writes to them pass through too.
public final class VolumeFileSystem: FUSEFileSystem, @unchecked Sendable {
    public let service: any VolumeService
    public let volume: VolumeName
    /// The base version shown, which a reload moves to the latest.
    public var version: Version { lock.withLock { base } }
    private var base: Version
    public let writable: Bool
    /// The session serving this file system, told what to drop from the kernel's caches on reload.
    public weak var invalidator: (any FUSEInvalidator)?

    /// How long the kernel may trust what it learnt of an unchanged base.
    static let cacheSeconds = 24 * 3600.0
    /// How long it may trust attributes in a writable mount, where files change under it.
    static let writableSeconds = 1.0

    let lock = NSLock()
    let commitLock = NSLock()
    /// Guards `journaled`, the overlay's change count when its journal was last written.
    let journalLock = NSLock()
    var journaled: UInt64 = 0
    let nodes = NodeTable()
    private var listings: [VolumePath: [Entry]] = [:]
    private var entries: [VolumePath: Entry] = [:]
    private let blocks: BlockCache
    let owner: (uid: UInt32, gid: UInt32)
    let overlay: Overlay?
    let cache: ContentCache?
    private let copies = WholeFileCopies()

    /// Mounts `version` of `volume` (resolve "latest" before calling). With `scratch`, a directory of
    /// this mount's own, the mount is writable and keeps its local changes there. With `cache`, files
    /// read through are kept whole there and passed through to on later opens.
    public init(
        service: any VolumeService, volume: VolumeName, version: Version, scratch: String? = nil, cache: ContentCache? = nil,
        cachedBlocks: Int = 8
    ) throws {
        self.service = service
        self.volume = volume
        self.base = version
        self.cache = cache
        self.blocks = BlockCache(capacity: cachedBlocks)
        self.owner = (getuid(), getgid())
        self.overlay = try scratch.map { try Overlay(scratch: $0) }
        self.writable = scratch != nil
    }

    var timeout: Double { writable ? Self.writableSeconds : Self.cacheSeconds }

    /// How many paths carry changes not yet committed.
    public var changedPaths: Int { overlay?.changedPaths ?? 0 }

    // MARK: Reading

    public func lookup(parent: UInt64, name: String) throws -> FUSEEntry {
        let directory = try nodes.path(of: parent)
        guard let path = try? directory.appending(name), let entry = try merged(path) else { throw FUSEError.notFound }
        let node = nodes.reference(path)
        return FUSEEntry(attributes: attributes(entry, node: node), entryTimeout: timeout, attributeTimeout: timeout)
    }

    public func forget(node: UInt64, lookups: UInt64) {
        nodes.forget(node, lookups: lookups)
    }

    public func attributes(of node: UInt64) throws -> FUSEAttributes {
        guard let entry = try merged(try nodes.path(of: node)) else { throw FUSEError.notFound }
        return attributes(entry, node: node)
    }

    public func attributeTimeout(of node: UInt64) -> Double { timeout }

    public func readLink(_ node: UInt64) throws -> String {
        guard let entry = try merged(try nodes.path(of: node)), entry.kind == .symlink, let target = entry.symlinkTarget else {
            throw FUSEError(EINVAL)
        }
        return target
    }

    public func listDirectory(_ node: UInt64) throws -> [FUSEDirectoryEntry] {
        let path = try nodes.path(of: node)
        var result = [
            FUSEDirectoryEntry(node: node, name: ".", type: S_IFDIR),
            FUSEDirectoryEntry(node: nodes.identifier(path.parent), name: "..", type: S_IFDIR),
        ]
        for entry in try mergedListing(of: path) {
            result.append(FUSEDirectoryEntry(node: nodes.identifier(entry.path), name: entry.path.name, type: Self.type(entry.kind)))
        }
        return result
    }

    public func open(_ node: UInt64, flags: Int32) throws -> FUSEOpened {
        let path = try nodes.path(of: node)
        guard let entry = try merged(path) else { throw FUSEError.notFound }
        guard entry.kind == .file else { throw FUSEError.isADirectory }
        let writing = flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0
        guard let overlay else {
            guard !writing else { throw FUSEError.readOnly }
            return FUSEOpened(handle: 0, keepCache: true, backingFile: try wholeCopy(of: entry))
        }
        if writing {
            if flags & O_TRUNC != 0, overlay.localFile(at: path) == nil {
                _ = try overlay.newFile(at: path, mode: entry.mode, now: Self.now())  // nothing to copy
            } else {
                try copyUp(path, entry)
            }
        }
        if let local = overlay.localFile(at: path) {
            let handle = try overlay.open(local, at: path, truncate: flags & O_TRUNC != 0, writing: writing)
            return FUSEOpened(handle: handle, keepCache: false, backingFile: overlay.backingFile(handle))
        }
        // A writable mount's base moves on reload, which drops changed files' pages explicitly.
        return FUSEOpened(handle: 0, keepCache: true, backingFile: try wholeCopy(of: entry))
    }

    /// A read-only descriptor of the cache's whole copy of a base file, if it has one.
    private func wholeCopy(of listed: Entry) throws -> Int32? {
        guard let cache, listed.size > 0 else { return nil }
        guard case .blocks(let hashes, let blockSize)? = try withContent(listed).content else { return nil }
        let key = ContentCache.key(of: hashes, size: listed.size, blockSize: blockSize)
        copies.settle()
        guard let copy = cache.wholeFile(key, size: listed.size) else { return nil }
        let fd = Glibc.open(copy, O_RDONLY | O_CLOEXEC)
        return fd >= 0 ? fd : nil
    }

    public func read(_ node: UInt64, handle: UInt64, offset: UInt64, size: Int) throws -> [UInt8] {
        if handle != 0, let overlay { return try overlay.read(handle, offset: offset, size: size) }
        let path = try nodes.path(of: node)
        guard let listed = try merged(path) else { throw FUSEError.notFound }
        let entry = try withContent(listed)
        guard offset < UInt64(entry.size), size > 0 else { return [] }
        return try bytes(of: entry, Int64(offset)..<min(entry.size, Int64(offset) + Int64(size)))
    }

    public func release(_ node: UInt64, handle: UInt64) {
        if handle != 0 { overlay?.close(handle, at: try? nodes.path(of: node)) }
    }

    public func statistics() throws -> FUSEStatistics {
        guard let overlay else {
            // A read-only version has no free space; figures for its size would need a walk of the tree.
            return FUSEStatistics(blockSize: 4096, blocks: 0, freeBlocks: 0, files: 0, freeFiles: 0)
        }
        // Writes land in the scratch directory: its disk's figures are the real ones.
        var figures = statvfs()
        guard statvfs(overlay.scratch, &figures) == 0 else { throw FUSEError(errno) }
        return FUSEStatistics(
            blockSize: UInt32(figures.f_frsize), blocks: UInt64(figures.f_blocks), freeBlocks: UInt64(figures.f_bavail),
            files: UInt64(figures.f_files), freeFiles: UInt64(figures.f_favail)
        )
    }

    // MARK: Changing

    public func setAttributes(of node: UInt64, _ changes: FUSEAttributeChanges) throws -> FUSEAttributes {
        let overlay = try changeable()
        let path = try nodes.path(of: node)
        guard var entry = try merged(path) else { throw FUSEError.notFound }
        if let size = changes.size {
            guard entry.kind == .file else { throw FUSEError.isADirectory }
            try copyUp(path, entry)
            try overlay.truncate(path, to: size)
            entry = try merged(path)!
        }
        if changes.mode != nil || changes.mtimeNanoseconds != nil {
            overlay.setMetadata(
                path, entry: entry, mode: changes.mode, mtime: changes.mtimeNanoseconds, baseHas: try baseEntry(path) != nil
            )
            entry = try merged(path)!
        }
        return attributes(entry, node: node)
    }

    public func create(parent: UInt64, name: String, mode: UInt32, flags: Int32) throws -> (FUSEEntry, FUSEOpened) {
        let overlay = try changeable()
        let path = try newPath(parent, name)
        let local = try overlay.newFile(at: path, mode: mode & 0o7777, now: Self.now())
        let handle = try overlay.open(local, at: path, truncate: false, writing: true)
        let node = nodes.reference(path)
        let entry = try merged(path)!
        return (
            FUSEEntry(attributes: attributes(entry, node: node), entryTimeout: timeout, attributeTimeout: timeout),
            FUSEOpened(handle: handle, keepCache: false, backingFile: overlay.backingFile(handle))
        )
    }

    public func makeDirectory(parent: UInt64, name: String, mode: UInt32) throws -> FUSEEntry {
        let overlay = try changeable()
        let path = try newPath(parent, name)
        overlay.put(path, .directory(opaque: overlay.isDeleted(path)), mode: mode, mtime: Self.now())
        return try entryReply(path)
    }

    public func makeSymlink(parent: UInt64, name: String, target: String) throws -> FUSEEntry {
        let overlay = try changeable()
        let path = try newPath(parent, name)
        overlay.put(path, .symlink(target), mode: 0o777, mtime: Self.now())
        return try entryReply(path)
    }

    public func remove(parent: UInt64, name: String, directory: Bool) throws {
        let overlay = try changeable()
        guard let path = try? nodes.path(of: parent).appending(name), let entry = try merged(path) else { throw FUSEError.notFound }
        if directory {
            guard entry.kind == .directory else { throw FUSEError.notADirectory }
            guard try mergedListing(of: path).isEmpty else { throw FUSEError(ENOTEMPTY) }
        } else if entry.kind == .directory {
            throw FUSEError.isADirectory
        }
        overlay.remove(path, baseHas: try baseEntry(path) != nil)
    }

    public func rename(parent: UInt64, name: String, to newParent: UInt64, newName: String, flags: UInt32) throws {
        let overlay = try changeable()
        guard let source = try? nodes.path(of: parent).appending(name), let moving = try merged(source) else {
            throw FUSEError.notFound
        }
        guard let target = try? nodes.path(of: newParent).appending(newName) else { throw FUSEError(EINVAL) }
        guard flags & ~UInt32(1) == 0 else { throw FUSEError(EINVAL) }  // RENAME_NOREPLACE only; no EXCHANGE
        guard source != target else { return }
        guard !target.isWithin(source) else { throw FUSEError(EINVAL) }
        if let existing = try merged(target) {
            if flags & 1 != 0 { throw FUSEError(EEXIST) }
            if existing.kind == .directory {
                guard moving.kind == .directory else { throw FUSEError.isADirectory }
                guard try mergedListing(of: target).isEmpty else { throw FUSEError(ENOTEMPTY) }
            } else if moving.kind == .directory {
                throw FUSEError.notADirectory
            }
            overlay.remove(target, baseHas: try baseEntry(target) != nil)
        }
        // Everything beneath a moved directory moves with it; base content moves without being copied.
        var moves: [(VolumePath, Entry)] = [(source, moving)]
        if moving.kind == .directory { moves += try mergedTree(of: source) }
        moves = try moves.map { path, entry in
            // A base file moves by reference to its content, which listings leave out for small files.
            overlay.localFile(at: path) == nil ? (path, try withContent(entry)) : (path, entry)
        }
        for (path, entry) in moves {
            let suffix = path.rawValue.dropFirst(source.rawValue.count)
            let destination = VolumePath(trusted: target.rawValue + suffix)
            overlay.move(from: path, entry: entry, to: destination, opaque: path == source)
        }
        for (path, _) in moves.reversed() {
            overlay.remove(path, baseHas: try baseEntry(path) != nil, keepLocal: true)
        }
        nodes.rename(source, to: target)
    }

    public func write(_ node: UInt64, handle: UInt64, offset: UInt64, bytes: UnsafeRawBufferPointer) throws -> Int {
        let overlay = try changeable()
        let path = try nodes.path(of: node)
        return try overlay.write(handle, path: path, offset: offset, bytes: bytes)
    }

    public func fsync(_ node: UInt64, handle: UInt64) throws {
        if handle != 0 { try overlay?.fsync(handle) }
    }

    // MARK: Reload

    /// Moves the mount to the volume's latest version, keeping uncommitted changes on top, and tells
    /// the kernel to drop what it cached of the paths that differ, and only those. Returns the version
    /// now shown. Readers meanwhile see the old version or the new one, never a mix of one listing.
    public func reload() throws -> Version {
        let (service, volume, from) = (self.service, self.volume, self.version)
        let latest = try Bridge.run { try await service.volume(volume).latestVersion }
        let changed = latest == from ? [] : try Bridge.run { try await service.changes(in: volume, from: from, to: latest) }
        var affected = Set(changed.map(\.path))
        lock.withLock {
            base = latest
            listings.removeAll()
            entries.removeAll()
        }
        if let overlay { affected.formUnion(overlay.dropCommitted()) }
        for path in affected.sorted() where !path.isRoot {
            // The path's next lookup gets a new node: the kernel keeps opens of the old one as they
            // are (a passthrough open's backing file belongs to its inode), and new opens start afresh.
            let node = nodes.detach(path)
            if let node { invalidator?.invalidate(node: node) }
            if let parent = nodes.existing(path.parent) { invalidator?.invalidate(entry: path.name, in: parent) }
        }
        return latest
    }

    // MARK: The merged view

    /// The entry at `path` as this mount shows it: the layer of changes over the base.
    func merged(_ path: VolumePath) throws -> Entry? {
        if path.isRoot { return try baseEntry(path) }
        if let overlay {
            switch overlay.lookup(path) {
            case .changed(let entry): return entry
            case .gone: return nil
            case .unchanged: break
            }
        }
        return try baseEntry(path)
    }

    /// A directory's entries in this mount's view, without `.` and `..`.
    func mergedListing(of path: VolumePath) throws -> [Entry] {
        guard let directory = try merged(path) else { throw FUSEError.notFound }
        guard directory.kind == .directory else { throw FUSEError.notADirectory }
        let hidden = overlay?.hidesBase(below: path) == true
        var base: [Entry] = []
        if !hidden, try baseEntry(path)?.kind == .directory { base = try listing(of: path) }
        let changed = overlay?.children(of: path) ?? []
        // Unchanged directories (every directory of a read-only mount) are the base's listing as it is.
        if changed.isEmpty && !hidden { return base }
        var result: [VolumePath: Entry] = [:]
        for entry in base { result[entry.path] = entry }
        for child in changed { result[child] = try merged(child) }
        return result.values.sorted { $0.path < $1.path }
    }

    /// Everything beneath a directory in this mount's view, parents before children.
    func mergedTree(of path: VolumePath) throws -> [(VolumePath, Entry)] {
        var result: [(VolumePath, Entry)] = []
        for entry in try mergedListing(of: path) {
            result.append((entry.path, entry))
            if entry.kind == .directory { result += try mergedTree(of: entry.path) }
        }
        return result
    }

    /// The base's entry at `path`, unless the layer of changes hides it.
    func baseEntry(_ path: VolumePath) throws -> Entry? {
        if path.isRoot { return try entry(at: path) }
        if overlay?.hidesBase(below: path.parent) == true { return nil }
        guard let parent = try baseEntry(path.parent), parent.kind == .directory else { return nil }
        // The parent's listing holds every child: once it is cached, a name not among the cached
        // entries is absent (a lookup is a dictionary hit, not a scan of the directory).
        let listed = try listing(of: path.parent)
        let (found, cached) = lock.withLock { (entries[path], listings[path.parent] != nil) }
        if found != nil || cached { return found }
        // A reload moved the base on while the listing was fetched, so it was not cached.
        return listed.first { $0.path == path }
    }

    private func changeable() throws -> Overlay {
        guard let overlay else { throw FUSEError.readOnly }
        return overlay
    }

    private func newPath(_ parent: UInt64, _ name: String) throws -> VolumePath {
        let directory = try nodes.path(of: parent)
        guard let path = try? directory.appending(name) else { throw FUSEError(EINVAL) }
        guard try merged(directory)?.kind == .directory else { throw FUSEError.notADirectory }
        guard try merged(path) == nil else { throw FUSEError(EEXIST) }
        return path
    }

    private func entryReply(_ path: VolumePath) throws -> FUSEEntry {
        let node = nodes.reference(path)
        return FUSEEntry(attributes: attributes(try merged(path)!, node: node), entryTimeout: timeout, attributeTimeout: timeout)
    }

    /// Makes `path` a local file holding its current bytes, so it can be written in place.
    private func copyUp(_ path: VolumePath, _ entry: Entry) throws {
        guard let overlay, overlay.localFile(at: path) == nil else { return }
        let full = try withContent(entry)
        var copy: Overlay.VerifiedCopy?
        if let cache, case .blocks(let hashes, let blockSize)? = full.content {
            let key = ContentCache.key(of: hashes, size: full.size, blockSize: blockSize)
            if let path = cache.wholeFile(key, size: full.size) {
                // The copy is read by the kernel without Silo and may have been damaged on disk since
                // it was made: what it gives is checked before it can become committed data.
                copy = Overlay.VerifiedCopy(path: path) { fd in
                    guard ContentCache.matches(fd, hashes: hashes, size: full.size, blockSize: blockSize) else {
                        cache.dropWholeFile(key)
                        return false
                    }
                    return true
                }
            }
        }
        try overlay.copyUp(path, entry: full, from: copy) { range in try self.bytes(of: full, range) }
    }

    static func now() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    // MARK: Fetching the base

    private func listing(of directory: VolumePath) throws -> [Entry] {
        let (cached, version) = lock.withLock { (listings[directory], base) }
        if let cached { return cached }
        let (service, volume) = (self.service, self.volume)
        let listed = try Bridge.wait { try await service.list(directory, in: volume, version: version) }
        lock.withLock {
            // A reload while this was fetched moved the base on: keep the answer out of the new cache.
            guard base == version else { return }
            listings[directory] = listed
            for entry in listed { entries[entry.path] = entry }
        }
        return listed
    }

    private func entry(at path: VolumePath) throws -> Entry {
        let (cached, version) = lock.withLock { (entries[path], base) }
        if let cached { return cached }
        let (service, volume) = (self.service, self.volume)
        guard let entry = try Bridge.wait({ try await service.entry(at: path, in: volume, version: version) }) else {
            throw FUSEError.notFound
        }
        lock.withLock { if base == version { entries[path] = entry } }
        return entry
    }

    /// `entry` with its content: listings leave small files' inline bytes out.
    private func withContent(_ listed: Entry) throws -> Entry {
        guard listed.kind == .file, listed.content == nil else { return listed }
        let (service, volume, version) = (self.service, self.volume, self.version)
        let path = listed.path
        guard let entry = try Bridge.wait({ try await service.entry(at: path, in: volume, version: version) }) else {
            throw FUSEError.notFound
        }
        return entry
    }

    /// Bytes `range` of a file entry of the base (or moved from it), block by block.
    private func bytes(of entry: Entry, _ range: Range<Int64>) throws -> [UInt8] {
        switch entry.content {
        case .inline(let bytes)?:
            return Array(bytes[Int(range.lowerBound)..<Int(range.upperBound)])
        case .blocks(let hashes, let blockSize)?:
            guard !range.isEmpty else { return [] }
            var result: [UInt8] = []
            result.reserveCapacity(range.count)
            let covered = BlockLayout(blockSize: blockSize).blocks(covering: range)
            let service = self.service
            for ahead in (covered.upperBound + 1)..<min(hashes.count, covered.upperBound + 1 + Self.readAhead) {
                let hash = hashes[ahead]
                blocks.prefetch(hash) { try await service.readBlock(hash).bytes }
            }
            let assembler = cache.flatMap { copies.assembler(for: hashes, size: entry.size, blockSize: blockSize, in: $0) }
            for index in covered {
                guard index < hashes.count else { throw FUSEError.io }
                let block = try self.block(hashes[index])
                if let assembler { copies.add(block, at: index, to: assembler) }
                let start = Int64(index) * Int64(blockSize)
                let low = Int(max(range.lowerBound, start) - start)
                let high = Int(min(range.upperBound, start + Int64(block.count)) - start)
                guard low <= high, high <= block.count else { throw FUSEError.io }
                result += block[low..<high]
            }
            return result
        case nil:
            throw FUSEError.io
        }
    }

    private func block(_ hash: BlockHash) throws -> [UInt8] {
        let service = self.service
        return try blocks.get(hash) { try Bridge.wait { try await service.readBlock(hash).bytes } }
    }

    /// Blocks fetched in the background past the end of each read: a sequential reader then finds
    /// the next ones in memory or on their way.
    static let readAhead = 2

    private func attributes(_ entry: Entry, node: UInt64) -> FUSEAttributes {
        FUSEAttributes(
            node: node, size: UInt64(entry.size), mode: Self.type(entry.kind) | (entry.mode & 0o7777),
            links: entry.kind == .directory ? 2 : 1, uid: owner.uid, gid: owner.gid, mtimeNanoseconds: entry.mtimeNanoseconds
        )
    }

    static func type(_ kind: EntryKind) -> UInt32 {
        switch kind {
        case .file: S_IFREG
        case .directory: S_IFDIR
        case .symlink: S_IFLNK
        }
    }
}

/// Node numbers for paths: 1 is the root; a number lives while the kernel holds lookups of it.
final class NodeTable: @unchecked Sendable {
    private let lock = NSLock()
    private var next: UInt64 = 2
    private var paths: [UInt64: VolumePath] = [1: .root]
    private var numbers: [VolumePath: UInt64] = [.root: 1]
    private var lookups: [UInt64: UInt64] = [:]

    func path(of node: UInt64) throws -> VolumePath {
        guard let path = lock.withLock({ paths[node] }) else { throw FUSEError.notFound }
        return path
    }

    /// The number of `path` if the kernel may know it.
    func existing(_ path: VolumePath) -> UInt64? {
        lock.withLock { numbers[path] }
    }

    /// The number of `path`, made if needed, without counting a lookup (for directory listings).
    func identifier(_ path: VolumePath) -> UInt64 {
        lock.withLock { number(path) }
    }

    /// The number of `path`, counting one lookup the kernel now holds.
    func reference(_ path: VolumePath) -> UInt64 {
        lock.withLock {
            let node = number(path)
            lookups[node, default: 0] += 1
            return node
        }
    }

    /// Gives `path` a new number at its next lookup; the old number keeps resolving to `path` until
    /// the kernel forgets it. Returns the old number.
    func detach(_ path: VolumePath) -> UInt64? {
        lock.withLock { numbers.removeValue(forKey: path) }
    }

    /// `source` and everything beneath it now live under `target`; their numbers stay.
    func rename(_ source: VolumePath, to target: VolumePath) {
        lock.withLock {
            if let replaced = numbers.removeValue(forKey: target) { paths[replaced] = nil }
            for (path, node) in numbers where path.isWithin(source) {
                let moved = VolumePath(trusted: target.rawValue + path.rawValue.dropFirst(source.rawValue.count))
                numbers[path] = nil
                numbers[moved] = node
                paths[node] = moved
            }
        }
    }

    func forget(_ node: UInt64, lookups count: UInt64) {
        lock.withLock {
            guard node != 1, let held = lookups[node] else { return }
            if held > count {
                lookups[node] = held - count
            } else {
                lookups[node] = nil
                if let path = paths.removeValue(forKey: node), numbers[path] == node { numbers[path] = nil }
            }
        }
    }

    private func number(_ path: VolumePath) -> UInt64 {
        if let node = numbers[path] { return node }
        let node = next
        next += 1
        numbers[path] = node
        paths[node] = path
        return node
    }
}

/// The last few blocks read, so a run of small kernel reads inside one block fetches it once, and the
/// blocks being fetched, so a read waits for a fetch already under way (a read-ahead) instead of
/// starting another.
final class BlockCache: @unchecked Sendable {
    private let lock = NSLock()
    private let capacity: Int
    private var order: [BlockHash] = []
    private var bytes: [BlockHash: [UInt8]] = [:]
    private var fetching: [BlockHash: DispatchGroup] = [:]

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// The block, from memory, from a fetch under way, or fetched now with `load`.
    func get(_ hash: BlockHash, load: () throws -> [UInt8]) throws -> [UInt8] {
        while true {
            let state: (found: [UInt8]?, wait: DispatchGroup?) = lock.withLock {
                if let found = bytes[hash] {
                    order.removeAll { $0 == hash }
                    order.append(hash)
                    return (found, nil)
                }
                return (nil, fetching[hash])
            }
            if let found = state.found { return found }
            guard let wait = state.wait else { break }
            wait.wait()
            // The fetch ended: the block is here now, or it failed and this read fetches it itself.
            if let found = lock.withLock({ bytes[hash] }) { return found }
            break
        }
        let block = try load()
        put(hash, block)
        return block
    }

    /// Starts fetching `hash` in the background unless it is here or already on its way.
    func prefetch(_ hash: BlockHash, load: @escaping @Sendable () async throws -> [UInt8]) {
        let group: DispatchGroup? = lock.withLock {
            guard bytes[hash] == nil, fetching[hash] == nil else { return nil }
            let group = DispatchGroup()
            group.enter()
            fetching[hash] = group
            return group
        }
        guard let group else { return }
        Task {
            let block = try? await load()
            lock.withLock {
                fetching[hash] = nil
                if let block {
                    if bytes.updateValue(block, forKey: hash) == nil { order.append(hash) }
                    while order.count > capacity { bytes[order.removeFirst()] = nil }
                }
            }
            group.leave()
        }
    }

    func put(_ hash: BlockHash, _ block: [UInt8]) {
        lock.withLock {
            if bytes.updateValue(block, forKey: hash) == nil { order.append(hash) }
            while order.count > capacity { bytes[order.removeFirst()] = nil }
        }
    }
}

/// The whole-file copies this mount is assembling from the blocks it reads, by content key.
///
/// Blocks are written into copies in the background, so a read does not wait for the copy's disk
/// writes; at most ``inFlight`` blocks wait their turn, after which a read waits too (the memory
/// they hold stays bounded).
final class WholeFileCopies: @unchecked Sendable {
    static let inFlight = 8
    private let writes = DispatchQueue(label: "silo.whole-file-copies")
    private let room = DispatchSemaphore(value: WholeFileCopies.inFlight)
    private let lock = NSLock()
    private var assembling: [String: WholeFileAssembler] = [:]
    /// Keys whose copy is in the cache (or cannot be made): nothing more to assemble.
    private var done: Set<String> = []

    /// Writes `block` into `assembler`'s copy in the background.
    func add(_ block: [UInt8], at index: Int, to assembler: WholeFileAssembler) {
        room.wait()
        writes.async { [room] in
            assembler.add(index, block)
            room.signal()
        }
    }

    /// Waits for the blocks handed over so far to be written: a copy whose last block was read is
    /// then stored, and an open finds it.
    func settle() {
        writes.sync {}
    }

    /// The assembler for a file's copy, made on first use; nil once the copy is stored.
    func assembler(for hashes: [BlockHash], size: Int64, blockSize: Int, in cache: ContentCache) -> WholeFileAssembler? {
        let key = ContentCache.key(of: hashes, size: size, blockSize: blockSize)
        return lock.withLock {
            if done.contains(key) { return nil }
            if let assembler = assembling[key] {
                guard assembler.completed == nil else {
                    assembling[key] = nil
                    done.insert(key)
                    return nil
                }
                return assembler
            }
            guard cache.wholeFile(key, size: size) == nil,
                let assembler = cache.assembler(key: key, size: size, blockSize: blockSize, blockCount: hashes.count)
            else {
                done.insert(key)
                return nil
            }
            assembling[key] = assembler
            return assembler
        }
    }
}

/// Runs async store calls from the file system's request threads, which are plain threads that may
/// block while the call runs on the concurrency pool.
enum Bridge {
    final class Box<T>: @unchecked Sendable { var result: Result<T, any Error>? }

    /// Runs `body` and waits for it, for a file system operation: store errors become errnos.
    static func wait<T>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        do {
            return try run(body)
        } catch let error as SiloError {
            throw FUSEError(errno(for: error.code))
        }
    }

    /// Runs `body` and waits for it, passing its errors on as they are.
    static func run<T>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let box = Box<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
            done.signal()
        }
        done.wait()
        return try box.result!.get()
    }

    /// The errno a program sees for each store error.
    static func errno(for code: SiloError.Code) -> Int32 {
        switch code {
        case .pathNotFound, .volumeNotFound, .versionNotFound: ENOENT
        case .notADirectory: ENOTDIR
        case .isADirectory: EISDIR
        case .noSpace: ENOSPC
        case .unauthorized, .forbidden: EACCES
        default: EIO
        }
    }
}
