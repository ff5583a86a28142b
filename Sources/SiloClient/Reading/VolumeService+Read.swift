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
        try await FileReader(service: self, memoryBlocks: 0).forEachChunk(of: entry, range: range ?? 0..<entry.size) { result += $0 }
        return result
    }
}
