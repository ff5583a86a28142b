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
    public func forEachChunk(of entry: Entry, range: Range<Int64>, _ body: ([UInt8]) throws -> Void) async throws {
        let range = max(0, range.lowerBound)..<min(entry.size, range.upperBound)
        guard !range.isEmpty else { return }
        switch entry.content {
        case .inline(let bytes)?:
            try body(Array(bytes[Int(range.lowerBound)..<Int(range.upperBound)]))
        case .blocks(let hashes, let blockSize)?:
            let layout = BlockLayout(blockSize: blockSize)
            for index in layout.blocks(covering: range) {
                guard index < hashes.count else {
                    throw SiloError(.storage, "\(entry.path) lists \(hashes.count) blocks but is \(entry.size) bytes long")
                }
                let block = try await readBlock(hashes[index])
                let start = Int64(index) * Int64(blockSize)
                let low = Int(max(range.lowerBound, start) - start)
                let high = Int(min(range.upperBound, start + Int64(block.bytes.count)) - start)
                guard low <= high, high <= block.bytes.count else {
                    throw SiloError(.storage, "block \(index) of \(entry.path) is shorter than the file's size says")
                }
                try body(low == 0 && high == block.bytes.count ? block.bytes : Array(block.bytes[low..<high]))
            }
        case nil:
            throw SiloError(.storage, "\(entry.path) has no recorded content")
        }
    }
}
