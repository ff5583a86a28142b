import Foundation
import Logging
import SiloCore
import SiloStore

/// The store in this process, under a local directory: no server, no configuration.
public struct EmbeddedVolumeService: VolumeService {
    /// The embedded store has one workspace.
    public static let workspace = "default"

    public let store: VolumeStore
    public let author: String
    private var workspace: String { Self.workspace }

    public init(store: VolumeStore, author: String) {
        self.store = store
        self.author = author
    }

    /// Where the embedded store lives unless told otherwise: `$SILO_HOME`, else `$XDG_DATA_HOME/silo`,
    /// else `~/.local/share/silo`. Mounts keep their runtime directories beneath it too.
    public static var defaultHome: String {
        let environment = ProcessInfo.processInfo.environment
        if let home = environment["SILO_HOME"], !home.isEmpty { return home }
        if let data = environment["XDG_DATA_HOME"], !data.isEmpty { return data + "/silo" }
        return NSHomeDirectory() + "/.local/share/silo"
    }

    public static func open(home: String, author: String, logger: Logger) async throws -> EmbeddedVolumeService {
        EmbeddedVolumeService(store: try await VolumeStore.openEmbedded(home: home, logger: logger), author: author)
    }

    public func createVolume(_ name: VolumeName, kind: VolumeKind) async throws -> VolumeInfo {
        try await store.createVolume(name, kind: kind, workspace: workspace, author: author)
    }

    public func locks(_ call: LockCall, in volume: VolumeName) async throws -> FileLock? {
        try await store.metadata.locks(call, in: volume, workspace: workspace, now: VolumeStore.nowMilliseconds())
    }

    public func volume(_ name: VolumeName) async throws -> VolumeInfo {
        try await store.metadata.volume(name, workspace: workspace)
    }

    public func listVolumes() async throws -> [VolumeInfo] {
        try await store.metadata.listVolumes(workspace: workspace)
    }

    public func renameVolume(_ name: VolumeName, to newName: VolumeName) async throws {
        try await store.metadata.renameVolume(name, to: newName, workspace: workspace)
    }

    public func deleteVolume(_ name: VolumeName) async throws {
        try await store.deleteVolume(name, workspace: workspace)
    }

    public func history(of volume: VolumeName) async throws -> [VersionInfo] {
        try await store.metadata.history(of: volume, workspace: workspace)
    }

    public func entry(at path: VolumePath, in volume: VolumeName, version: Version?) async throws -> Entry? {
        try await store.metadata.entry(at: path, in: volume, workspace: workspace, version: version)
    }

    public func list(_ path: VolumePath, in volume: VolumeName, version: Version?) async throws -> [Entry] {
        try await store.metadata.list(path, in: volume, workspace: workspace, version: version)
    }

    public func tree(_ path: VolumePath, in volume: VolumeName, version: Version?) async throws -> [Entry] {
        try await store.metadata.tree(path, in: volume, workspace: workspace, version: version)
    }

    public func changes(in volume: VolumeName, from: Version, to: Version) async throws -> [PathChange] {
        try await store.metadata.changes(in: volume, workspace: workspace, from: from, to: to)
    }

    public func missingBlocks(_ hashes: [BlockHash]) async throws -> [BlockHash] {
        try await store.missingBlocks(hashes, workspace: workspace)
    }

    public func uploadBlock(_ block: Block) async throws {
        try await store.putBlock(block, workspace: workspace)
    }

    public func readBlock(_ hash: BlockHash) async throws -> Block {
        try await store.readBlock(hash, workspace: workspace)
    }

    public var blocksAreLocal: Bool { true }

    public func commit(_ changeset: Changeset, to volume: VolumeName, options: CommitOptions) async throws -> CommitResult {
        try await store.commit(changeset, to: volume, workspace: workspace, options: options)
    }

    public func close() async throws {
        try await store.metadata.close()
    }
}
