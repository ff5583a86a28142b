import SiloCore

/// The versioned tree of every volume: names, histories, entries.
///
/// Every operation takes the workspace it acts in. Adapters: ``SQLMetadataStore`` over SQLite
/// (embedded) and, later, PostgreSQL. Reading the tree at a version costs O(entries read); a commit
/// costs O(size of its changeset), never O(files in the volume).
public protocol MetadataStore: Sendable {
    func createVolume(_ name: VolumeName, kind: VolumeKind, workspace: String, author: String, now: Int64) async throws -> VolumeInfo
    func volume(_ name: VolumeName, workspace: String) async throws -> VolumeInfo
    /// Carries out `call` on the volume's lock table at time `now` (milliseconds); answers the lock of
    /// another holder in the way, if any (a `take` then takes nothing).
    func locks(_ call: LockCall, in volume: VolumeName, workspace: String, now: Int64) async throws -> FileLock?
    func listVolumes(workspace: String) async throws -> [VolumeInfo]
    func renameVolume(_ name: VolumeName, to newName: VolumeName, workspace: String) async throws
    /// Removes the volume and its history; blocks no other volume of the workspace uses are queued for
    /// ``collectGarbage(workspace:delete:)``.
    func deleteVolume(_ name: VolumeName, workspace: String) async throws

    /// Applies `changeset` on top of the volume's latest version, atomically, with per-path
    /// last-writer-wins. Every block a file names must be recorded (see ``blockStates(_:workspace:)``),
    /// not damaged, and of the length the file's size and block size call for; blocks stored before
    /// lengths were recorded are looked up with `lengthsOfUnrecordedBlocks` inside the transaction, which
    /// must throw if any is absent, and recorded.
    func commit(
        _ changeset: Changeset,
        to volume: VolumeName,
        workspace: String,
        options: CommitOptions,
        now: Int64,
        lengthsOfUnrecordedBlocks: @escaping @Sendable (Set<BlockHash>) async throws -> [BlockHash: Int]
    ) async throws -> CommitResult

    /// What the store knows of each of `hashes` that it has a record of: its length, and whether a read
    /// found it damaged. Hashes without a record are left out.
    func blockStates(_ hashes: [BlockHash], workspace: String) async throws -> [BlockHash: BlockState]
    /// Records a block stored whole and verified: its length, and no damage.
    func recordBlock(_ hash: BlockHash, length: Int, workspace: String) async throws
    /// Bytes of the blocks the workspace holds (each once, however many files use it).
    func storedBytes(workspace: String) async throws -> Int64
    /// Marks a block a read found damaged (or gone), so that it counts as missing and an upload of it
    /// repairs it. A block with no record gets one only when `length` is given.
    func markBlockDamaged(_ hash: BlockHash, length: Int?, workspace: String) async throws

    /// The entry at `path` in `version` (latest when nil), or nil when the path does not exist.
    func entry(at path: VolumePath, in volume: VolumeName, workspace: String, version: Version?) async throws -> Entry?
    /// The children of directory `path`, sorted by name.
    func list(_ path: VolumePath, in volume: VolumeName, workspace: String, version: Version?) async throws -> [Entry]
    /// Everything beneath directory `path` (not `path` itself), sorted by path.
    func tree(_ path: VolumePath, in volume: VolumeName, workspace: String, version: Version?) async throws -> [Entry]
    /// How paths differ from version `from` to version `to`, sorted by path.
    func changes(in volume: VolumeName, workspace: String, from: Version, to: Version) async throws -> [PathChange]
    func history(of volume: VolumeName, workspace: String) async throws -> [VersionInfo]

    /// Deletes queued blocks that nothing references any more, using `delete`; safe against commits
    /// running at the same time (a block a commit claims is kept).
    func collectGarbage(workspace: String, delete: @escaping @Sendable ([BlockHash]) async throws -> Void) async throws -> Int

    func close() async throws
}

/// A stored block as the metadata records it.
public struct BlockState: Sendable, Hashable {
    public var length: Int
    public var damaged: Bool

    public init(length: Int, damaged: Bool) {
        self.length = length
        self.damaged = damaged
    }
}
