import SiloCore

extension VolumeService {
    /// Bytes `range` of the file at `path` (the whole file when nil), verified block by block.
    public func read(_ path: VolumePath, in volume: VolumeName, version: Version? = nil, range: Range<Int64>? = nil) async throws -> [UInt8] {
        guard let entry = try await entry(at: path, in: volume, version: version) else {
            throw SiloError(.pathNotFound, "\(path) does not exist in volume '\(volume)'")
        }
        guard entry.kind == .file else {
            throw SiloError(.isADirectory, "\(path) in volume '\(volume)' is a \(entry.kind.rawValue), not a file")
        }
        var result: [UInt8] = []
        try await forEachChunk(of: entry, range: range ?? 0..<entry.size) { result += $0 }
        return result
    }

    /// Calls `body` with the bytes of `range` of a file entry, in order, one block's worth at a time.
    ///
    /// Up to `readAhead` blocks are fetched at once (a server answers them in parallel); they are handed
    /// to `body` in file order.
    public func forEachChunk(
        of entry: Entry, range: Range<Int64>, readAhead: Int = 4, _ body: ([UInt8]) throws -> Void
    ) async throws {
        let range = max(0, range.lowerBound)..<min(entry.size, range.upperBound)
        guard !range.isEmpty else { return }
        switch entry.content {
        case .inline(let bytes)?:
            try body(Array(bytes[Int(range.lowerBound)..<Int(range.upperBound)]))
        case .blocks(let hashes, let blockSize)?:
            let indexes = Array(BlockLayout(blockSize: blockSize).blocks(covering: range))
            guard indexes.last! < hashes.count else {
                throw SiloError(.storage, "\(entry.path) lists \(hashes.count) blocks but is \(entry.size) bytes long")
            }
            try await withThrowingTaskGroup(of: (Int, Block).self) { group in
                var launched = 0
                func launch() {
                    let position = launched
                    let hash = hashes[indexes[position]]
                    group.addTask { (position, try await self.readBlock(hash)) }
                    launched += 1
                }
                while launched < min(max(1, readAhead), indexes.count) { launch() }
                var arrived: [Int: Block] = [:]
                for position in indexes.indices {
                    while arrived[position] == nil {
                        guard let (done, block) = try await group.next() else { break }
                        arrived[done] = block
                    }
                    guard let block = arrived.removeValue(forKey: position) else { break }
                    if launched < indexes.count { launch() }
                    let start = Int64(indexes[position]) * Int64(blockSize)
                    let low = Int(max(range.lowerBound, start) - start)
                    let high = Int(min(range.upperBound, start + Int64(block.bytes.count)) - start)
                    guard low <= high, high <= block.bytes.count else {
                        throw SiloError(.storage, "block \(indexes[position]) of \(entry.path) is shorter than the file's size says")
                    }
                    try body(low == 0 && high == block.bytes.count ? block.bytes : Array(block.bytes[low..<high]))
                }
            }
        case nil:
            throw SiloError(.storage, "\(entry.path) has no recorded content")
        }
    }
}
