import SiloCore

/// The versioned tree of every volume: names, histories, entries.
///
/// Every operation takes the workspace it acts in. Adapters: ``SQLMetadataStore`` over SQLite
/// (embedded) and, later, PostgreSQL. Reading the tree at a version costs O(entries read); a commit
/// costs O(size of its changeset), never O(files in the volume).
public protocol MetadataStore: Sendable {
    func createVolume(_ name: VolumeName, workspace: String, author: String, now: Int64) async throws -> VolumeInfo
    func volume(_ name: VolumeName, workspace: String) async throws -> VolumeInfo
    func listVolumes(workspace: String) async throws -> [VolumeInfo]
    func renameVolume(_ name: VolumeName, to newName: VolumeName, workspace: String) async throws
    /// Removes the volume and its history; blocks no other volume of the workspace uses are queued for
    /// ``collectGarbage(workspace:delete:)``.
    func deleteVolume(_ name: VolumeName, workspace: String) async throws

    /// Applies `changeset` on top of the volume's latest version, atomically, with per-path
    /// last-writer-wins. `verifyBlocks` runs inside the transaction and must throw if any block is absent.
    func commit(
        _ changeset: Changeset,
        to volume: VolumeName,
        workspace: String,
        options: CommitOptions,
        now: Int64,
        verifyBlocks: @escaping @Sendable (Set<BlockHash>) async throws -> Void
    ) async throws -> CommitResult

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
