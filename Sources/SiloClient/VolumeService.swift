import SiloCore

/// Everything a client does with volumes, whether the store runs in this process (``EmbeddedVolumeService``)
/// or behind a server.
///
/// Transfers (``Uploader``, ``Downloader``) and the CLI are written against this face only.
public protocol VolumeService: Sendable {
    /// Creates an empty volume of `kind` (snapshot or shared).
    func createVolume(_ name: VolumeName, kind: VolumeKind) async throws -> VolumeInfo
    func volume(_ name: VolumeName) async throws -> VolumeInfo
    /// Carries out `call` on a shared volume's lock table; answers another holder's lock in the way.
    func locks(_ call: LockCall, in volume: VolumeName) async throws -> FileLock?
    func listVolumes() async throws -> [VolumeInfo]
    func renameVolume(_ name: VolumeName, to newName: VolumeName) async throws
    func deleteVolume(_ name: VolumeName) async throws
    func history(of volume: VolumeName) async throws -> [VersionInfo]

    /// The entry at `path` in `version` (latest when nil), or nil if there is none.
    func entry(at path: VolumePath, in volume: VolumeName, version: Version?) async throws -> Entry?
    func list(_ path: VolumePath, in volume: VolumeName, version: Version?) async throws -> [Entry]
    /// Everything beneath a directory, with file contents' block lists, sorted by path.
    func tree(_ path: VolumePath, in volume: VolumeName, version: Version?) async throws -> [Entry]
    func changes(in volume: VolumeName, from: Version, to: Version) async throws -> [PathChange]

    /// Which of `hashes` the store lacks; upload only those.
    func missingBlocks(_ hashes: [BlockHash]) async throws -> [BlockHash]
    func uploadBlock(_ block: Block) async throws
    /// A block, verified against its hash.
    func readBlock(_ hash: BlockHash) async throws -> Block
    /// Whether blocks are read from this machine's disk (the embedded store): then a cache of them
    /// on the same disk would only double what is stored.
    var blocksAreLocal: Bool { get }
    func commit(_ changeset: Changeset, to volume: VolumeName, options: CommitOptions) async throws -> CommitResult

    func close() async throws
}

extension VolumeService {
    /// Creates an empty snapshot volume.
    public func createVolume(_ name: VolumeName) async throws -> VolumeInfo {
        try await createVolume(name, kind: .snapshot)
    }

    /// Creates an empty volume of `kind`, or finds the one of that name and kind made already
    /// (`volumeExists` if it is of the other kind); says which.
    public func createVolumeIfMissing(_ name: VolumeName, kind: VolumeKind) async throws -> (volume: VolumeInfo, created: Bool) {
        do {
            return (try await createVolume(name, kind: kind), true)
        } catch let error as SiloError where error.code == .volumeExists {
            let existing = try await volume(name)
            guard existing.kind == kind else {
                throw SiloError(
                    .volumeExists,
                    "volume '\(name)' exists already as a \(existing.kind == .shared ? "shared" : "snapshot") volume; pick another name")
            }
            return (existing, false)
        }
    }
}
