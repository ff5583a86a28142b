import Foundation
import Logging
import SQLKit
import SiloClient
import SiloCore
import SiloStore
import SiloTesting
import Testing

/// A store keeps only what it can serve: declared sizes match the blocks' real lengths, a block found
/// damaged is missing until uploaded again, and its schema moves forward only.
@Suite(.timeLimit(.minutes(5))) struct BlockIntegrityTests {
    let name = try! VolumeName("vol")

    @Test(arguments: StoreSetup.all)
    func declaredSizesMustMatchTheBlocksRealLengths(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(name)
            let small = Block(bytes: [1, 2, 3, 4])
            try await service.uploadBlock(small)
            let eightMiB = Int64(BlockLayout.defaultBlockSize)
            for (size, blockSize, blocks) in [
                (eightMiB, BlockLayout.defaultBlockSize, [small.hash]),  // one 4-byte block claims 8 MiB
                (9, 5, [small.hash, small.hash]),  // the first block must be whole (5 bytes)
                (3, 5, [small.hash]),  // the last block must hold exactly the rest
            ] {
                let error = await #expect(throws: SiloError.self) {
                    try await service.commit(
                        Changeset([.put(try VolumePath("f"), FilePut(content: .blocks(blocks, blockSize: blockSize), size: size, mtimeNanoseconds: 0))]),
                        to: name, options: CommitOptions(author: "t")
                    )
                }
                #expect(error?.code == .invalidArgument, "size \(size) in blocks of \(blockSize)")
                #expect(error?.paths == ["/f"])
            }
            #expect(try await service.volume(name).latestVersion == .empty)

            // The same block where the arithmetic holds is accepted.
            _ = try await service.commit(
                Changeset([.put(try VolumePath("f"), FilePut(content: .blocks([small.hash, small.hash], blockSize: 4), size: 8, mtimeNanoseconds: 0))]),
                to: name, options: CommitOptions(author: "t")
            )
            #expect(try await service.read(try VolumePath("f"), in: name) == [1, 2, 3, 4, 1, 2, 3, 4])
        }
    }

    @Test(arguments: StoreSetup.all)
    func aBlockFoundDamagedIsMissingUntilUploadedAgain(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(name)
            let bytes = pseudoRandomBytes(count: 3000, seed: 7)
            let content = try await service.uploadBlocks(bytes, blockSize: 1000)
            let file = FilePut(content: content, size: 3000, mtimeNanoseconds: 0)
            _ = try await service.commit(Changeset([.put(try VolumePath("a"), file)]), to: name, options: CommitOptions(author: "t"))
            let hash = content.blockHashes[1]
            #expect(try await service.missingBlocks(content.blockHashes).isEmpty)

            try fixture.damageBlock(hash)
            let read = await #expect(throws: SiloError.self) { try await service.read(try VolumePath("a"), in: name) }
            #expect(read?.code == .corruptBlock)

            // Found damaged: reported missing, and no new commit may name it.
            #expect(try await service.missingBlocks(content.blockHashes) == [hash])
            let commit = await #expect(throws: SiloError.self) {
                try await service.commit(Changeset([.put(try VolumePath("b"), file)]), to: name, options: CommitOptions(author: "t"))
            }
            #expect(commit?.code == .missingBlock)
            #expect(commit?.message.contains(hash.hex) == true)

            // Uploading it again repairs it: the old file reads, and the commit goes through.
            try await service.uploadBlock(Block(bytes: Array(bytes[1000..<2000])))
            #expect(try await service.missingBlocks(content.blockHashes).isEmpty)
            #expect(try await service.read(try VolumePath("a"), in: name) == bytes)
            _ = try await service.commit(Changeset([.put(try VolumePath("b"), file)]), to: name, options: CommitOptions(author: "t"))
            #expect(try await service.read(try VolumePath("b"), in: name) == bytes)
        }
    }

    /// Undoes the schema steps after `version` that change a table's shape, as a store written by an
    /// older silo has it (step 3 only moved tokens into the schema).
    static func rewindSchema(_ db: any SQLDatabase, to version: Int) async throws {
        let undo: [Int: [String]] = [
            2: ["DROP TABLE blocks"],
            4: ["ALTER TABLE entries DROP COLUMN uid", "ALTER TABLE entries DROP COLUMN gid"],
            5: ["ALTER TABLE entries DROP COLUMN xattrs"],
            6: ["DROP INDEX entries_file", "ALTER TABLE entries DROP COLUMN file_id"],
            7: ["ALTER TABLE entries DROP COLUMN device"],
            8: ["ALTER TABLE volumes DROP COLUMN kind"],
        ]
        for step in undo.keys.sorted(by: >) where step > version {
            for statement in undo[step]! { try await db.raw(SQLQueryString(statement)).run() }
        }
        try await db.raw("UPDATE silo_schema SET version = \(bind: version)").run()
    }

    @Test func anOlderStoreIsMigratedAndANewerOneRefused() async throws {
        let directory = try TemporaryDirectory("silo-schema")
        defer { directory.remove() }
        let home = directory.path + "/home"
        let logger = Logger(label: "silo-test")
        let service = try await EmbeddedVolumeService.open(home: home, author: "t", logger: logger)
        _ = try await service.createVolume(name)
        let bytes = pseudoRandomBytes(count: 2000, seed: 8)
        let content = try await service.uploadBlocks(bytes, blockSize: 1000)
        try await service.close()

        // Turn it into a store as the first schema left it: no record of block lengths, nor of owners.
        try await Self.withDatabase(home) { db in try await Self.rewindSchema(db, to: 1) }
        let migrated = try await EmbeddedVolumeService.open(home: home, author: "t", logger: logger)
        // Blocks stored before the migration are still usable, with their lengths checked.
        _ = try await migrated.commit(
            Changeset([.put(try VolumePath("f"), FilePut(content: content, size: 2000, mtimeNanoseconds: 0))]),
            to: name, options: CommitOptions(author: "t")
        )
        #expect(try await migrated.read(try VolumePath("f"), in: name) == bytes)
        try await migrated.close()
        #expect(try await Self.schemaVersion(home) == SQLMetadataStore.schemaVersion)

        try await Self.withDatabase(home) { db in try await db.raw("UPDATE silo_schema SET version = 99").run() }
        let error = await #expect(throws: SiloError.self) {
            try await EmbeddedVolumeService.open(home: home, author: "t", logger: logger)
        }
        #expect(error?.message.contains("schema version 99") == true)
        #expect(error?.message.contains("newer silo") == true)
    }

    /// A store written before owners were recorded (schema 3) opens and reads as it did; its paths
    /// have no owner, and new commits record theirs.
    @Test func aStoreFromBeforeOwnersReadsUnchanged() async throws {
        let directory = try TemporaryDirectory("silo-schema")
        defer { directory.remove() }
        let home = directory.path + "/home"
        let logger = Logger(label: "silo-test")
        let service = try await EmbeddedVolumeService.open(home: home, author: "t", logger: logger)
        _ = try await service.createVolume(name)
        try await service.put(["old/a.txt": "from before"], in: name)
        try await service.close()
        try await Self.withDatabase(home) { db in try await Self.rewindSchema(db, to: 3) }

        let reopened = try await EmbeddedVolumeService.open(home: home, author: "t", logger: logger)
        let old = try #require(try await reopened.entry(at: try VolumePath("old/a.txt"), in: name, version: nil))
        #expect(old.owner == nil && old.version == Version(1))
        #expect(try await reopened.text("old/a.txt", in: name) == "from before")
        let owner = Owner(uid: 1000, gid: 100)
        _ = try await reopened.commit(
            Changeset([
                .put(try VolumePath("new/b.txt"), FilePut(content: .inline([1]), size: 1, mtimeNanoseconds: 0, owner: owner)),
                .makeDirectory(try VolumePath("new/d"), mtimeNanoseconds: 0, owner: Owner(uid: 7, gid: 8)),
                .symlink(try VolumePath("new/l"), target: "b.txt", mtimeNanoseconds: 0, owner: Owner(uid: 9, gid: 10)),
            ]),
            to: name, options: CommitOptions(author: "t")
        )
        #expect(try await reopened.entry(at: try VolumePath("new/b.txt"), in: name, version: nil)?.owner == owner)
        #expect(try await reopened.entry(at: try VolumePath("new/d"), in: name, version: nil)?.owner == Owner(uid: 7, gid: 8))
        #expect(try await reopened.entry(at: try VolumePath("new/l"), in: name, version: nil)?.owner == Owner(uid: 9, gid: 10))
        // A parent made by the commit records none.
        #expect(try await reopened.entry(at: try VolumePath("new"), in: name, version: nil)?.owner == nil)
        try await reopened.close()
        #expect(try await Self.schemaVersion(home) == SQLMetadataStore.schemaVersion)
    }

    static func withDatabase(_ home: String, _ body: @escaping @Sendable (any SQLDatabase) async throws -> Void) async throws {
        let backend = try await SQLiteBackend.open(path: home + "/metadata.sqlite", logger: Logger(label: "silo-test"))
        do {
            try await backend.writeTransaction(body)
        } catch {
            try? await backend.close()
            throw error
        }
        try await backend.close()
    }

    static func schemaVersion(_ home: String) async throws -> Int64 {
        let backend = try await SQLiteBackend.open(path: home + "/metadata.sqlite", logger: Logger(label: "silo-test"))
        defer { Task { try? await backend.close() } }
        return try await backend.readTransaction { db in
            try await db.raw("SELECT version FROM silo_schema").all()[0].decode(column: "version", as: Int64.self)
        }
    }
}
