import Foundation
import SiloClient
import SiloCore
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// One version of a volume as a read-only file system, served lazily: nothing is listed at attach;
/// a directory is listed when first looked into, a file's blocks are fetched when first read.
///
/// A version never changes, so the kernel may cache names, attributes and pages for as long as it
/// likes (long timeouts, `keepCache`).
public final class VolumeFileSystem: FUSEFileSystem, @unchecked Sendable {
    public let service: any VolumeService
    public let volume: VolumeName
    public let version: Version

    /// How long the kernel may trust what it learnt: a version is immutable.
    static let cacheSeconds = 24 * 3600.0

    private let lock = NSLock()
    private let nodes = NodeTable()
    private var listings: [VolumePath: [Entry]] = [:]
    private var entries: [VolumePath: Entry] = [:]
    private let blocks: BlockCache
    private let owner: (uid: UInt32, gid: UInt32)

    /// Mounts `version` of `volume` (resolve "latest" before calling).
    public init(service: any VolumeService, volume: VolumeName, version: Version, cachedBlocks: Int = 8) {
        self.service = service
        self.volume = volume
        self.version = version
        self.blocks = BlockCache(capacity: cachedBlocks)
        self.owner = (getuid(), getgid())
    }

    // MARK: FUSEFileSystem

    public func lookup(parent: UInt64, name: String) throws -> FUSEEntry {
        let directory = try nodes.path(of: parent)
        guard let path = try? directory.appending(name) else { throw FUSEError.notFound }
        guard let entry = try listing(of: directory).first(where: { $0.path == path }) else { throw FUSEError.notFound }
        let node = nodes.reference(path)
        return FUSEEntry(attributes: attributes(entry, node: node), entryTimeout: Self.cacheSeconds, attributeTimeout: Self.cacheSeconds)
    }

    public func forget(node: UInt64, lookups: UInt64) {
        nodes.forget(node, lookups: lookups)
    }

    public func attributes(of node: UInt64) throws -> FUSEAttributes {
        attributes(try entry(at: try nodes.path(of: node)), node: node)
    }

    public func attributeTimeout(of node: UInt64) -> Double { Self.cacheSeconds }

    public func readLink(_ node: UInt64) throws -> String {
        let entry = try entry(at: try nodes.path(of: node))
        guard entry.kind == .symlink, let target = entry.symlinkTarget else { throw FUSEError(EINVAL) }
        return target
    }

    public func listDirectory(_ node: UInt64) throws -> [FUSEDirectoryEntry] {
        let path = try nodes.path(of: node)
        var result = [
            FUSEDirectoryEntry(node: node, name: ".", type: S_IFDIR),
            FUSEDirectoryEntry(node: nodes.identifier(path.parent), name: "..", type: S_IFDIR),
        ]
        for entry in try listing(of: path) {
            result.append(FUSEDirectoryEntry(node: nodes.identifier(entry.path), name: entry.path.name, type: Self.type(entry.kind)))
        }
        return result
    }

    public func open(_ node: UInt64, flags: Int32) throws -> FUSEOpened {
        guard flags & O_ACCMODE == O_RDONLY, flags & O_TRUNC == 0 else { throw FUSEError.readOnly }
        let entry = try entry(at: try nodes.path(of: node))
        guard entry.kind == .file else { throw FUSEError.isADirectory }
        return FUSEOpened(handle: 0, keepCache: true)
    }

    public func read(_ node: UInt64, handle: UInt64, offset: UInt64, size: Int) throws -> [UInt8] {
        let entry = try file(at: try nodes.path(of: node))
        guard offset < UInt64(entry.size), size > 0 else { return [] }
        let range = Int64(offset)..<min(entry.size, Int64(offset) + Int64(size))
        switch entry.content {
        case .inline(let bytes)?:
            return Array(bytes[Int(range.lowerBound)..<Int(range.upperBound)])
        case .blocks(let hashes, let blockSize)?:
            var result: [UInt8] = []
            result.reserveCapacity(range.count)
            for index in BlockLayout(blockSize: blockSize).blocks(covering: range) {
                guard index < hashes.count else { throw FUSEError.io }
                let block = try self.block(hashes[index])
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

    public func statistics() throws -> FUSEStatistics {
        // A read-only version has no free space; figures for its size would need a walk of the tree.
        FUSEStatistics(blockSize: 4096, blocks: 0, freeBlocks: 0, files: 0, freeFiles: 0)
    }

    // MARK: Fetching

    private func listing(of directory: VolumePath) throws -> [Entry] {
        if let cached = lock.withLock({ listings[directory] }) { return cached }
        let (service, volume, version) = (self.service, self.volume, self.version)
        let listed = try Bridge.wait { try await service.list(directory, in: volume, version: version) }
        lock.withLock {
            listings[directory] = listed
            for entry in listed { entries[entry.path] = entry }
        }
        return listed
    }

    private func entry(at path: VolumePath) throws -> Entry {
        if let cached = lock.withLock({ entries[path] }) { return cached }
        let (service, volume, version) = (self.service, self.volume, self.version)
        guard let entry = try Bridge.wait({ try await service.entry(at: path, in: volume, version: version) }) else {
            throw FUSEError.notFound
        }
        lock.withLock { entries[path] = entry }
        return entry
    }

    /// The entry of a file with its content: listings leave small files' inline bytes out.
    private func file(at path: VolumePath) throws -> Entry {
        let listed = try entry(at: path)
        guard listed.kind == .file, listed.content == nil else { return listed }
        let (service, volume, version) = (self.service, self.volume, self.version)
        guard let entry = try Bridge.wait({ try await service.entry(at: path, in: volume, version: version) }) else {
            throw FUSEError.notFound
        }
        lock.withLock { entries[path] = entry }
        return entry
    }

    private func block(_ hash: BlockHash) throws -> [UInt8] {
        if let bytes = blocks.get(hash) { return bytes }
        let service = self.service
        let bytes = try Bridge.wait { try await service.readBlock(hash).bytes }
        blocks.put(hash, bytes)
        return bytes
    }

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

    func forget(_ node: UInt64, lookups count: UInt64) {
        lock.withLock {
            guard node != 1, let held = lookups[node] else { return }
            if held > count {
                lookups[node] = held - count
            } else {
                lookups[node] = nil
                if let path = paths.removeValue(forKey: node) { numbers[path] = nil }
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

/// The last few blocks read, so a run of small kernel reads inside one block fetches it once.
final class BlockCache: @unchecked Sendable {
    private let lock = NSLock()
    private let capacity: Int
    private var order: [BlockHash] = []
    private var bytes: [BlockHash: [UInt8]] = [:]

    init(capacity: Int) { self.capacity = max(1, capacity) }

    func get(_ hash: BlockHash) -> [UInt8]? {
        lock.withLock {
            guard let found = bytes[hash] else { return nil }
            order.removeAll { $0 == hash }
            order.append(hash)
            return found
        }
    }

    func put(_ hash: BlockHash, _ block: [UInt8]) {
        lock.withLock {
            if bytes.updateValue(block, forKey: hash) == nil { order.append(hash) }
            while order.count > capacity { bytes[order.removeFirst()] = nil }
        }
    }
}

/// Runs async store calls from the file system's request threads, which are plain threads that may
/// block while the call runs on the concurrency pool.
enum Bridge {
    final class Box<T>: @unchecked Sendable { var result: Result<T, any Error>? }

    static func wait<T>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let box = Box<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
            done.signal()
        }
        done.wait()
        do {
            return try box.result!.get()
        } catch let error as SiloError {
            throw FUSEError(errno(for: error.code))
        }
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
