import SiloCore

/// Where block bytes live: a local directory (embedded), an S3 bucket (later).
///
/// Blocks are kept per namespace (a workspace): a workspace can never learn that another holds some
/// content. Every adapter passes the same rules (`BlobStoreConformance` in SiloTesting).
public protocol BlobStore: Sendable {
    /// The length of a held block, without reading it; nil when the block is not held.
    func length(of hash: BlockHash, namespace: String) async throws -> Int?
    /// Stores a block durably. Storing a block that is already there is harmless and leaves the stored
    /// copy as it is, unless `replacing`, which writes it again (how a damaged copy is repaired).
    func put(_ block: Block, namespace: String, replacing: Bool) async throws
    /// Reads a block and verifies its bytes against its hash; a mismatch is ``SiloError/Code/corruptBlock``.
    func get(_ hash: BlockHash, namespace: String) async throws -> Block
    /// Removes a block; removing a missing block is harmless.
    func delete(_ hash: BlockHash, namespace: String) async throws
    /// The hashes among `hashes` that are not held.
    func missing(_ hashes: [BlockHash], namespace: String) async throws -> [BlockHash]
}

extension BlobStore {
    /// The hashes among `hashes` that are not held. Adapters that can ask for many at once (one round
    /// trip, one thread hop) override it.
    public func missing(_ hashes: [BlockHash], namespace: String) async throws -> [BlockHash] {
        var missing: [BlockHash] = []
        for hash in hashes where try await length(of: hash, namespace: namespace) == nil { missing.append(hash) }
        return missing
    }

    public func put(_ block: Block, namespace: String) async throws {
        try await put(block, namespace: namespace, replacing: false)
    }
}
