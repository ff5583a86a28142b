import Foundation
import Logging
import SiloCore
import SiloStore
import SiloTesting
import Testing

/// Backends chosen by URL: what is understood, what is refused and why, and a store opened in two
/// places at once.
@Suite(.timeLimit(.minutes(2))) struct StoreConfigurationTests {
    @Test func theDefaultIsTheEmbeddedLayoutAndURLsReplaceEitherPart() throws {
        let local = StoreConfiguration.local(home: "/h")
        #expect(local.metadata == .sqlite(path: "/h/metadata.sqlite") && local.blocks == .directory(path: "/h/blocks"))
        #expect(local.description == "metadata sqlite:///h/metadata.sqlite, blocks file:///h/blocks")
        #expect(try StoreConfiguration.resolve(home: "/h", metadata: nil, blocks: "") == local)
        let moved = try StoreConfiguration.resolve(home: "/h", metadata: "sqlite:///db/silo.sqlite", blocks: "FILE:///disk/blocks")
        #expect(moved.metadata == .sqlite(path: "/db/silo.sqlite") && moved.blocks == .directory(path: "/disk/blocks"))
    }

    @Test(arguments: [
        ("sqlite://relative/m.sqlite", "absolute path"),
        ("sqlite:///a/../etc/m.sqlite", "without '..'"),
        ("/just/a/path", "has no scheme"),
        ("postgres://db.example/silo", "SQLite only"),
        ("sqlite:///a\u{0}b", "absolute path"),
    ])
    func badMetadataURLsSayWhatIsUnderstood(text: String, reason: String) {
        let error = #expect(throws: SiloError.self) { try StoreConfiguration.resolve(home: "/h", metadata: text, blocks: nil) }
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
    }

    @Test func s3BlocksAreNotBuiltYetAndSaySo() {
        let error = #expect(throws: SiloError.self) {
            try StoreConfiguration.resolve(home: "/h", metadata: nil, blocks: "s3://bucket/prefix?endpoint=http://127.0.0.1:8333")
        }
        #expect(error?.message.contains("file:///") == true)
    }

    @Test func aStoreOpensWithItsMetadataAndBlocksInTwoPlacesPrivately() async throws {
        let directory = try TemporaryDirectory("silo-configuration")
        defer { directory.remove() }
        let configuration = try StoreConfiguration.resolve(
            home: directory.path + "/unused", metadata: "sqlite://\(directory.path)/db/m.sqlite", blocks: "file://\(directory.path)/disk/blocks")
        let (store, backend) = try await VolumeStore.open(configuration, logger: Logger(label: "silo-test"))
        let volume = try VolumeName("v")
        _ = try await store.createVolume(volume, workspace: "w", author: "t")
        let block = Block(bytes: pseudoRandomBytes(count: 100_000, seed: 1))
        try await store.putBlock(block, workspace: "w")
        let path = try VolumePath("f")
        _ = try await store.commit(
            Changeset([.put(path, FilePut(content: .blocks([block.hash], blockSize: 100_000), size: 100_000, mtimeNanoseconds: 0))]),
            to: volume, workspace: "w", options: CommitOptions(author: "t")
        )
        #expect(try await store.readBlock(block.hash, workspace: "w").bytes == block.bytes)
        try await backend.close()
        // Each part where its URL says, private to its owner; nothing under the unused home.
        let manager = FileManager.default
        #expect(manager.fileExists(atPath: directory.path + "/db/m.sqlite"))
        #expect(manager.fileExists(atPath: directory.path + "/disk/blocks/w/" + block.hash.hex.prefix(2) + "/" + block.hash.hex))
        #expect(!manager.fileExists(atPath: directory.path + "/unused"))
        #expect(try mode(of: directory.path + "/db/m.sqlite") == 0o600)
        #expect(try mode(of: directory.path + "/disk/blocks") == 0o700)
    }

    func mode(of path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
    }
}
