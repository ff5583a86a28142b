import Foundation
import Logging
import NIOPosix
import SiloCore

/// The store: metadata and blocks behind one face, for one or many workspaces.
///
/// This is what the embedded client calls in-process and, later, what the server calls per request.
public struct VolumeStore: Sendable {
    public let metadata: any MetadataStore
    public let blobs: any BlobStore

    public init(metadata: any MetadataStore, blobs: any BlobStore) {
        self.metadata = metadata
        self.blobs = blobs
    }

    /// Opens (creating if needed) the embedded store under `home`: `metadata.sqlite` and `blocks/`.
    public static func openEmbedded(home: String, logger: Logger) async throws -> VolumeStore {
        try FileIO.makePrivateDirectory(home)
        return try await open(.local(home: home), logger: logger).store
    }

    public static func nowMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }

    public func createVolume(_ name: VolumeName, kind: VolumeKind = .snapshot, workspace: String, author: String) async throws -> VolumeInfo {
        try await metadata.createVolume(name, kind: kind, workspace: workspace, author: author, now: Self.nowMilliseconds())
    }

    /// Deletes the volume, its history, and every block no other volume of the workspace uses.
    public func deleteVolume(_ name: VolumeName, workspace: String) async throws {
        try await metadata.deleteVolume(name, workspace: workspace)
        _ = try await collectGarbage(workspace: workspace)
    }

    /// Deletes blocks that deletions left unreferenced; returns how many.
    public func collectGarbage(workspace: String) async throws -> Int {
        let blobs = self.blobs
        return try await metadata.collectGarbage(workspace: workspace) { hashes in
            for hash in hashes { try await blobs.delete(hash, namespace: workspace) }
        }
    }

    /// The hashes among `hashes` that the workspace does not hold yet, or holds damaged: what a client
    /// must upload before a commit may name them.
    public func missingBlocks(_ hashes: [BlockHash], workspace: String) async throws -> [BlockHash] {
        let states = try await metadata.blockStates(hashes, workspace: workspace)
        // Blocks stored before their lengths were recorded are asked of the blob store, all at once.
        let unrecorded = Set(try await blobs.missing(hashes.filter { states[$0] == nil }, namespace: workspace))
        return hashes.filter { states[$0]?.damaged ?? unrecorded.contains($0) }
    }

    /// Stores a verified block and records its length (what quotas count). A block the store holds
    /// already is left as it is, and costs nothing against `byteQuota`; one it holds damaged is written
    /// again, which repairs it. A new block that would take the workspace past `byteQuota` bytes is
    /// refused (``SiloError/Code/noSpace``) and nothing is stored.
    public func putBlock(_ block: Block, workspace: String, byteQuota: Int64? = nil) async throws {
        let state = try await metadata.blockStates([block.hash], workspace: workspace)[block.hash]
        if let state, !state.damaged { return }
        if let byteQuota, state == nil {
            let stored = try await metadata.storedBytes(workspace: workspace)
            guard stored + Int64(block.bytes.count) <= byteQuota else {
                throw SiloError(
                    .noSpace,
                    "workspace '\(workspace)' holds \(stored) bytes of its quota of \(byteQuota); delete volumes you no longer need or ask the server's admin for more (nothing was changed)"
                )
            }
        }
        try await blobs.put(block, namespace: workspace, replacing: state?.damaged == true)
        try await metadata.recordBlock(block.hash, length: block.bytes.count, workspace: workspace)
    }

    /// Reads a block, verified. A block found damaged (or gone, though recorded) is marked so: it then
    /// counts as missing, and the next upload of it repairs it.
    public func readBlock(_ hash: BlockHash, workspace: String) async throws -> Block {
        do {
            return try await blobs.get(hash, namespace: workspace)
        } catch let error as SiloError where error.code == .corruptBlock || error.code == .missingBlock {
            let length = error.code == .corruptBlock ? try? await blobs.length(of: hash, namespace: workspace) : nil
            try? await metadata.markBlockDamaged(hash, length: length, workspace: workspace)
            throw error
        }
    }

    public func commit(_ changeset: Changeset, to volume: VolumeName, workspace: String, options: CommitOptions) async throws -> CommitResult {
        try changeset.validate()
        let blobs = self.blobs
        return try await metadata.commit(
            changeset, to: volume, workspace: workspace, options: options, now: Self.nowMilliseconds()
        ) { hashes in
            var lengths: [BlockHash: Int] = [:]
            var missing: [BlockHash] = []
            for hash in hashes {
                if let length = try await blobs.length(of: hash, namespace: workspace) {
                    lengths[hash] = length
                } else {
                    missing.append(hash)
                }
            }
            guard missing.isEmpty else {
                throw SiloError(
                    .missingBlock,
                    "commit names \(missing.count) block(s) the store does not hold (first: \(missing.sorted()[0].hex)); upload them and commit again"
                )
            }
            return lengths
        }
    }
}
