import Foundation
import SiloCore
import Synchronization

/// The one way Silo reads files' bytes: block source (the embedded store or a server) → the
/// machine's verified disk cache → a few blocks in memory, read ahead → whole-file copies assembled
/// from what was read. `silo volume get` streams through it; mounts read through it at any offset.
///
/// Every block is verified against its hash wherever it comes from (``Block`` checks on creation,
/// the cache on every read). Blocks of a store on this machine are already on local disk, so they
/// are not copied into the cache; a server's are, and every process using the cache finds them there.
public final class FileReader: Sendable {
    public let service: any VolumeService
    /// Where whole-file copies go, and a server's blocks.
    public let cache: ContentCache?
    private let recent: RecentBlocks
    private let copies: WholeFileCopies?
    /// Blocks fetched ahead of each read at an offset: a sequential reader then finds the next ones in
    /// memory or on their way.
    public let readAhead: Int

    /// With `assembleCopies`, files read through from start to end (in any order) are kept whole in
    /// `cache`, for opens to pass through to. `memoryBlocks` recent blocks are kept in memory, so a
    /// run of small reads inside one block fetches it once.
    public init(
        service: any VolumeService, cache: ContentCache? = nil, assembleCopies: Bool = false, memoryBlocks: Int = 8, readAhead: Int = 2
    ) {
        self.service = service
        self.cache = cache
        self.recent = RecentBlocks(capacity: memoryBlocks)
        self.copies = assembleCopies && cache != nil ? WholeFileCopies() : nil
        self.readAhead = readAhead
    }

    /// A block's bytes: from memory, from a fetch under way, from the disk cache, or fetched now.
    public func block(_ hash: BlockHash) async throws -> [UInt8] {
        try await recent.bytes(of: hash) { [self] in try await fetch(hash) }
    }

    /// A block from the disk cache or the source, kept in the disk cache when it came from afar.
    private func fetch(_ hash: BlockHash) async throws -> [UInt8] {
        let diskCache = service.blocksAreLocal ? nil : cache
        if let cached = diskCache?.block(hash) { return cached.bytes }
        let block = try await service.readBlock(hash)
        diskCache?.store(block)
        return block.bytes
    }

    /// Bytes `range` of a file entry (which must carry its content), fetching the blocks after it in
    /// the background and, when assembling, handing each block read to the file's whole copy.
    public func read(_ entry: Entry, _ range: Range<Int64>) async throws -> [UInt8] {
        let range = max(0, range.lowerBound)..<min(entry.size, range.upperBound)
        guard !range.isEmpty else { return [] }
        switch entry.content {
        case .inline(let bytes)?:
            guard Int64(bytes.count) >= range.upperBound else { throw Self.short(entry) }
            return Array(bytes[Int(range.lowerBound)..<Int(range.upperBound)])
        case .blocks(let hashes, let blockSize)?:
            let covered = BlockLayout(blockSize: blockSize).blocks(covering: range)
            guard covered.upperBound < hashes.count else { throw Self.short(entry) }
            for ahead in (covered.upperBound + 1)..<min(hashes.count, covered.upperBound + 1 + readAhead) {
                let hash = hashes[ahead]
                recent.prefetch(hash) { [self] in try await fetch(hash) }
            }
            let assembler = cache.flatMap { copies?.assembler(for: hashes, size: entry.size, blockSize: blockSize, in: $0) }
            var result: [UInt8] = []
            result.reserveCapacity(range.count)
            for index in covered {
                let bytes = try await block(hashes[index])
                if let assembler { copies?.add(bytes, at: index, to: assembler) }
                try Self.append(bytes, ofBlock: index, blockSize: blockSize, within: range, of: entry, to: &result)
            }
            return result
        case nil:
            throw SiloError(.storage, "\(entry.path) has no recorded content")
        }
    }

    /// Calls `body` with the bytes of `range` of a file entry, in order, a block's worth at a time,
    /// with up to `depth` blocks on their way at once (a server answers them in parallel).
    public func forEachChunk(of entry: Entry, range: Range<Int64>, depth: Int = 4, _ body: ([UInt8]) throws -> Void) async throws {
        let range = max(0, range.lowerBound)..<min(entry.size, range.upperBound)
        guard !range.isEmpty else { return }
        guard case .blocks(let hashes, let blockSize)? = entry.content else {
            return try body(try await read(entry, range))
        }
        let indexes = Array(BlockLayout(blockSize: blockSize).blocks(covering: range))
        guard indexes.last! < hashes.count else { throw Self.short(entry) }
        try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            var launched = 0
            func launch() {
                let position = launched
                let hash = hashes[indexes[position]]
                group.addTask { (position, try await self.block(hash)) }
                launched += 1
            }
            while launched < min(max(1, depth), indexes.count) { launch() }
            var arrived: [Int: [UInt8]] = [:]
            for position in indexes.indices {
                while arrived[position] == nil {
                    guard let (done, bytes) = try await group.next() else { break }
                    arrived[done] = bytes
                }
                guard let bytes = arrived.removeValue(forKey: position) else { break }
                if launched < indexes.count { launch() }
                var chunk: [UInt8] = []
                try Self.append(bytes, ofBlock: indexes[position], blockSize: blockSize, within: range, of: entry, to: &chunk)
                try body(chunk)
            }
        }
    }

    /// The path of the cache's whole copy of a file entry (which must carry its content), once every
    /// block handed to its assembly so far is written; nil when there is none.
    public func wholeCopy(of entry: Entry) -> String? {
        guard let cache, entry.size > 0, case .blocks(let hashes, let blockSize)? = entry.content else { return nil }
        copies?.settle()
        return cache.wholeFile(ContentCache.key(of: hashes, size: entry.size, blockSize: blockSize), size: entry.size)
    }

    /// Appends the part of block `index` that lies within `range`.
    private static func append(
        _ block: [UInt8], ofBlock index: Int, blockSize: Int, within range: Range<Int64>, of entry: Entry, to result: inout [UInt8]
    ) throws {
        let start = Int64(index) * Int64(blockSize)
        let low = Int(max(range.lowerBound, start) - start)
        let high = Int(min(range.upperBound, start + Int64(block.count)) - start)
        guard low <= high, high <= block.count else {
            throw SiloError(.storage, "block \(index) of \(entry.path) is shorter than the file's size says")
        }
        if low == 0 && high == block.count && result.isEmpty {
            result = block
        } else {
            result += block[low..<high]
        }
    }

    private static func short(_ entry: Entry) -> SiloError {
        SiloError(.storage, "\(entry.path) is \(entry.size) bytes long but its recorded content holds fewer")
    }
}

/// The last few blocks read, so a run of small reads inside one block fetches it once, and the
/// blocks on their way, so a read waits for a fetch already under way (a read-ahead) instead of
/// starting another.
final class RecentBlocks: Sendable {
    private struct State {
        var order: [BlockHash] = []
        var bytes: [BlockHash: [UInt8]] = [:]
        var fetching: [BlockHash: Task<[UInt8], any Error>] = [:]
    }

    private let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = max(0, capacity) }

    /// The block from memory, from a fetch under way, or fetched now with `load`.
    func bytes(of hash: BlockHash, load: @escaping @Sendable () async throws -> [UInt8]) async throws -> [UInt8] {
        enum Found {
            case bytes([UInt8])
            case fetch(Task<[UInt8], any Error>)
        }
        let found: Found = state.withLock { state in
            if let bytes = state.bytes[hash] {
                state.order.removeAll { $0 == hash }
                state.order.append(hash)
                return .bytes(bytes)
            }
            return .fetch(state.fetching[hash] ?? start(hash, load, in: &state))
        }
        switch found {
        case .bytes(let bytes): return bytes
        case .fetch(let task): return try await task.value
        }
    }

    /// Starts fetching `hash` in the background unless it is here or already on its way.
    func prefetch(_ hash: BlockHash, load: @escaping @Sendable () async throws -> [UInt8]) {
        state.withLock { state in
            guard state.bytes[hash] == nil, state.fetching[hash] == nil else { return }
            _ = start(hash, load, in: &state)
        }
    }

    private func start(_ hash: BlockHash, _ load: @escaping @Sendable () async throws -> [UInt8], in state: inout State) -> Task<[UInt8], any Error> {
        // On the shared pool, whatever executor the reader's caller prefers: a fetch outlives the read
        // that started it.
        let task = Task(executorPreference: globalConcurrentExecutor) {
            do {
                let bytes = try await load()
                self.keep(hash, bytes)
                return bytes
            } catch {
                _ = self.state.withLock { $0.fetching.removeValue(forKey: hash) }
                throw error
            }
        }
        state.fetching[hash] = task
        return task
    }

    private func keep(_ hash: BlockHash, _ bytes: [UInt8]) {
        state.withLock { state in
            state.fetching[hash] = nil
            guard capacity > 0 else { return }
            if state.bytes.updateValue(bytes, forKey: hash) == nil { state.order.append(hash) }
            while state.order.count > capacity { state.bytes[state.order.removeFirst()] = nil }
        }
    }
}
