import SiloCore

/// Where block bytes live: a local directory (embedded), an S3 bucket (later).
///
/// Blocks are kept per namespace (a workspace): a workspace can never learn that another holds some
/// content. Every adapter passes the same conformance suite (`BlobStoreConformance` in the tests).
public protocol BlobStore: Sendable {
    /// Whether the block is held, without reading it.
    func contains(_ hash: BlockHash, namespace: String) async throws -> Bool
    /// Stores a block durably; storing a block that is already there is harmless.
    func put(_ block: Block, namespace: String) async throws
    /// Reads a block and verifies its bytes against its hash; a mismatch is ``SiloError/Code/corruptBlock``.
    func get(_ hash: BlockHash, namespace: String) async throws -> Block
    /// Removes a block; removing a missing block is harmless.
    func delete(_ hash: BlockHash, namespace: String) async throws
}
