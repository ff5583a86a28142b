import SiloCore

extension VolumeService {
    /// Copies `sources` to `destination` within a volume, as one commit that moves no data: files keep
    /// referring to the blocks they have. With several sources, or `into` (the destination named as a
    /// directory, `dst/`), or an existing directory at `destination`, each source lands inside it.
    public func copy(
        _ sources: [VolumePath], to destination: VolumePath, into: Bool = false, in volume: VolumeName, options: CommitOptions
    ) async throws -> CommitResult {
        guard !sources.isEmpty else { throw SiloError(.invalidArgument, "copy needs at least one source") }
        let destinationKind = try await entry(at: destination, in: volume, version: nil)?.kind
        let into = into || sources.count > 1 || destinationKind == .directory
        var builder = ChangesetBuilder()
        for source in sources {
            guard let top = try await entry(at: source, in: volume, version: nil) else {
                throw SiloError(.pathNotFound, "\(source) does not exist in volume '\(volume)'")
            }
            let target = into ? try destination.appending(source.isRoot ? volume.rawValue : source.name) : destination
            if target.isWithin(source) && top.kind == .directory {
                throw SiloError(.invalidArgument, "cannot copy \(source) into itself (\(target))")
            }
            let entries = top.kind == .directory ? [top] + (try await tree(source, in: volume, version: nil)) : [top]
            try builder.copyTree(entries, from: source, to: target)
        }
        return try await commit(builder.changeset, to: volume, options: options)
    }
}
