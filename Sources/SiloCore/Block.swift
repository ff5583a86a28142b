/// A block's bytes together with their SHA-256, computed here: a `Block` cannot carry a wrong hash.
///
/// Stores accept blocks only in this form, so "verified on write" holds by construction, with one hash
/// computation per block whether the bytes came from a local file or over the network.
public struct Block: Sendable {
    public let hash: BlockHash
    public let bytes: [UInt8]

    /// Hashes `bytes` with `hasher` (reuse one hasher across blocks on hot paths).
    public init(bytes: [UInt8], hasher: SHA256Hasher = SHA256Hasher()) {
        hasher.reset()
        hasher.update(bytes)
        self.hash = hasher.finalize()
        self.bytes = bytes
    }

    /// Hashes `bytes` and checks them against the hash they were sent or stored under.
    public init(bytes: [UInt8], expected: BlockHash, hasher: SHA256Hasher = SHA256Hasher()) throws(SiloError) {
        self.init(bytes: bytes, hasher: hasher)
        guard hash == expected else {
            throw SiloError(
                .corruptBlock,
                "block \(expected.hex) is corrupt: its \(bytes.count) bytes hash to \(hash.hex)",
            )
        }
    }
}
