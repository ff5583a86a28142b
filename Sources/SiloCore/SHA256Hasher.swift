import CSiloCrypto

/// Incremental SHA-256 over OpenSSL's libcrypto, which uses the CPU's SHA extensions where present.
///
/// One hasher is reused across many blocks (``reset()`` instead of a new allocation); it is not
/// thread-safe, so give each task its own.
public final class SHA256Hasher {
    private let context: OpaquePointer

    public init() {
        guard let context = silo_sha256_new() else {
            fatalError("OpenSSL's libcrypto did not provide SHA-256; is libssl3 installed?")
        }
        self.context = context
    }

    deinit { silo_sha256_free(context) }

    public func reset() {
        precondition(silo_sha256_reset(context) == 0, "SHA-256 reset failed")
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        precondition(silo_sha256_update(context, base, bytes.count) == 0, "SHA-256 update failed")
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest of everything fed since the last reset; the hasher is reset afterwards.
    public func finalize() -> BlockHash {
        var digest = [UInt8](repeating: 0, count: 32)
        let status = digest.withUnsafeMutableBufferPointer { silo_sha256_final(context, $0.baseAddress!) }
        precondition(status == 0, "SHA-256 final failed")
        reset()
        return try! BlockHash(bytes: digest)
    }

    /// The SHA-256 of `bytes` in one call.
    public static func hash(_ bytes: [UInt8]) -> BlockHash {
        let hasher = SHA256Hasher()
        hasher.update(bytes)
        return hasher.finalize()
    }
}
