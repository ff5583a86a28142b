import Foundation
import SiloCore
import SiloStore
import SiloTesting
import Testing

/// Every blob store adapter passes the same rules (`BlobStoreConformance`).
@Suite struct BlobStoreConformanceTests {
    @Test func theLocalDirectoryStorePassesTheConformanceRules() async throws {
        let directory = try TemporaryDirectory("silo-blobs")
        defer { directory.remove() }
        let store = try LocalBlobStore(root: directory.path + "/blocks")
        try await BlobStoreConformance.check(store) { hash, namespace in
            let path = store.path(of: hash, namespace: namespace)
            chmod(path, 0o600)
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[bytes.count / 2] ^= 0xFF
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
    }

    /// The suite can fail: an adapter that ignores namespaces breaks a rule, and the suite names it.
    @Test func anAdapterBreakingARuleIsCaught() async throws {
        struct OneNamespace: BlobStore {
            let inner: LocalBlobStore
            func length(of hash: BlockHash, namespace: String) async throws -> Int? { try await inner.length(of: hash, namespace: "all") }
            func put(_ block: Block, namespace: String, replacing: Bool) async throws { try await inner.put(block, namespace: "all", replacing: replacing) }
            func get(_ hash: BlockHash, namespace: String) async throws -> Block { try await inner.get(hash, namespace: "all") }
            func delete(_ hash: BlockHash, namespace: String) async throws { try await inner.delete(hash, namespace: "all") }
            func missing(_ hashes: [BlockHash], namespace: String) async throws -> [BlockHash] { try await inner.missing(hashes, namespace: "all") }
        }
        let directory = try TemporaryDirectory("silo-blobs")
        defer { directory.remove() }
        let broken = OneNamespace(inner: try LocalBlobStore(root: directory.path + "/blocks"))
        let violation = await #expect(throws: BlobStoreConformance.Violation.self) { try await BlobStoreConformance.check(broken) }
        #expect(violation?.description.contains("namespaces are apart") == true)
    }
}
