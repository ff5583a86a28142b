import Foundation
import Logging
import SiloClient
import SiloCore
import SiloStore
import SiloTesting
import Testing

/// DESIGN section 2 rules the store implements, on every metadata backend.
@Suite(.timeLimit(.minutes(5))) struct VolumeStoreTests {
    let name = try! VolumeName("vol")

    @Test(arguments: StoreSetup.all)
    func volumesAreCreatedListedRenamedAndDeleted(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            let created = try await service.createVolume(name)
            #expect(created.latestVersion == .empty)
            await #expect(throws: SiloError.self) { try await service.createVolume(name) }
            _ = try await service.createVolume(try VolumeName("other"))
            #expect(try await service.listVolumes().map(\.name.rawValue) == ["other", "vol"])

            try await service.put(["a.txt": "one"], in: name)
            let renamed = try VolumeName("renamed")
            let clash = await #expect(throws: SiloError.self) { try await service.renameVolume(name, to: try VolumeName("other")) }
            #expect(clash?.code == .volumeExists)
            try await service.renameVolume(name, to: renamed)
            #expect(try await service.text("a.txt", in: renamed) == "one")
            #expect(try await service.history(of: renamed).count == 2)
            let gone = await #expect(throws: SiloError.self) { try await service.volume(name) }
            #expect(gone?.code == .volumeNotFound)

            try await service.deleteVolume(renamed)
            #expect(try await service.listVolumes().map(\.name.rawValue) == ["other"])
            // A new volume of the old name starts empty: nothing of the deleted one survives.
            _ = try await service.createVolume(renamed)
            #expect(try await service.list(.root, in: renamed, version: nil).isEmpty)
        }
    }

    @Test(arguments: StoreSetup.all)
    func deletingAVolumeRemovesItsBlocksButKeepsSharedOnes(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            let keep = try VolumeName("keep")
            _ = try await service.createVolume(name)
            _ = try await service.createVolume(keep)
            let shared = pseudoRandomBytes(count: 3000, seed: 1)
            let own = pseudoRandomBytes(count: 3000, seed: 2)
            let sharedContent = try await service.uploadBlocks(shared, blockSize: 1000)
            let ownContent = try await service.uploadBlocks(own, blockSize: 1000)
            _ = try await service.commit(Changeset([
                .put(try VolumePath("shared"), FilePut(content: sharedContent, size: 3000, mtimeNanoseconds: 0)),
                .put(try VolumePath("own"), FilePut(content: ownContent, size: 3000, mtimeNanoseconds: 0)),
            ]), to: name, options: CommitOptions(author: "t"))
            _ = try await service.commit(Changeset([
                .put(try VolumePath("copy"), FilePut(content: sharedContent, size: 3000, mtimeNanoseconds: 0)),
            ]), to: keep, options: CommitOptions(author: "t"))
            #expect(fixture.blockFiles().count == 6)

            try await service.deleteVolume(name)
            #expect(fixture.blockFiles().count == 3)
            #expect(try await service.read(try VolumePath("copy"), in: keep) == shared)
        }
    }

    @Test(arguments: StoreSetup.all)
    func everyVersionStaysReadable(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(name)
            try await service.put(["d/a": "a1", "d/b": "b1"], in: name)
            try await service.put(["d/a": "a2"], in: name)
            _ = try await service.commit(Changeset([.remove(try VolumePath("d/b"), recursive: false)]), to: name, options: CommitOptions(author: "t"))

            #expect(try await service.list(.root, in: name, version: 0).isEmpty)
            #expect(try await service.text("d/a", in: name, version: 1) == "a1")
            #expect(try await service.text("d/a", in: name, version: 2) == "a2")
            #expect(try await service.text("d/b", in: name, version: 2) == "b1")
            #expect(try await service.text("d/b", in: name, version: 3) == nil)
            #expect(try await service.list(try VolumePath("d"), in: name, version: 3).map(\.path.name) == ["a"])
            #expect(try await service.entry(at: try VolumePath("d/a"), in: name, version: nil)?.version == 2)
            let tooNew = await #expect(throws: SiloError.self) { try await service.list(.root, in: name, version: 9) }
            #expect(tooNew?.code == .versionNotFound)

            let changes = try await service.changes(in: name, from: 1, to: 3)
            #expect(changes == [
                PathChange(path: try VolumePath("d/a"), kind: .modified, entryKind: .file),
                PathChange(path: try VolumePath("d/b"), kind: .removed, entryKind: .file),
            ])
            #expect(try await service.changes(in: name, from: 0, to: 1).map(\.kind) == [.added, .added, .added])

            let history = try await service.history(of: name)
            #expect(history.map(\.version) == [0, 1, 2, 3])
            #expect(history.map(\.filesAdded) == [0, 2, 0, 0])
            #expect(history.map(\.filesChanged) == [0, 0, 1, 0])
            #expect(history.map(\.filesRemoved) == [0, 0, 0, 1])
            #expect(history.map(\.bytesAdded) == [0, 4, 2, 0])
            #expect(history.allSatisfy { $0.author == "test" || $0.author == "t" })
        }
    }

    @Test(arguments: StoreSetup.all)
    func concurrentCommitsToDifferentFilesAreAllKept(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            _ = try await fixture.service.createVolume(name)
            // Separate connections, as separate processes (or machines) have.
            var writers: [any VolumeService] = []
            for index in 0..<8 { writers.append(try await fixture.reopen(author: "writer\(index)")) }
            let name = self.name
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, writer) in writers.enumerated() {
                    group.addTask {
                        for round in 0..<5 { try await writer.put(["w\(index)/r\(round)": "\(index).\(round)"], in: name) }
                    }
                }
                try await group.waitForAll()
            }
            for index in 0..<8 {
                for round in 0..<5 {
                    #expect(try await fixture.service.text("w\(index)/r\(round)", in: name) == "\(index).\(round)")
                }
            }
            #expect(try await fixture.service.volume(name).latestVersion == 40)
        }
    }

    @Test(arguments: StoreSetup.all)
    func theLastCommitToAFileWinsWhole(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(name)
            let first = try await fixture.reopen()
            let second = try await fixture.reopen()
            let contents = [pseudoRandomBytes(count: 5000, seed: 10), pseudoRandomBytes(count: 7000, seed: 11)]
            let name = self.name
            let results = try await withThrowingTaskGroup(of: (Int, Version).self) { group in
                for (index, writer) in [first, second].enumerated() {
                    group.addTask {
                        let content = try await writer.uploadBlocks(contents[index], blockSize: 1024)
                        let result = try await writer.commit(Changeset([
                            .put(try VolumePath("model.bin"), FilePut(content: content, size: Int64(contents[index].count), mtimeNanoseconds: 0)),
                            .put(try VolumePath("only\(index)"), FilePut(content: .inline([UInt8(index)]), size: 1, mtimeNanoseconds: 0)),
                        ]), to: name, options: CommitOptions(author: "w\(index)"))
                        return (index, result.version.version)
                    }
                }
                return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            try await first.close()
            try await second.close()
            let winner = results[0]! > results[1]! ? 0 : 1
            #expect(try await service.read(try VolumePath("model.bin"), in: name) == contents[winner])
            #expect(try await service.entry(at: try VolumePath("model.bin"), in: name, version: nil)?.version == results[winner])
            // The other commit's other file is kept: merging is per file.
            #expect(try await service.text("only0", in: name) != nil)
            #expect(try await service.text("only1", in: name) != nil)
        }
    }

    @Test(arguments: StoreSetup.all)
    func failedPreconditionsApplyNothingAndNameThePaths(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(name)
            try await service.put(["taken": "x", "versioned": "v1"], in: name)
            let file = FilePut(content: .inline([1]), size: 1, mtimeNanoseconds: 0)
            let error = await #expect(throws: SiloError.self) {
                try await service.commit(Changeset([
                    .put(try VolumePath("fresh"), file, precondition: .absent),
                    .put(try VolumePath("taken"), file, precondition: .absent),
                    .put(try VolumePath("versioned"), file, precondition: .atVersion(7)),
                    .remove(try VolumePath("missing"), recursive: false, precondition: .atVersion(1)),
                ]), to: name, options: CommitOptions(author: "t"))
            }
            #expect(error?.code == .conflict)
            #expect(error?.paths == ["/taken", "/versioned", "/missing"])
            #expect(error?.message.contains("/taken") == true)
            #expect(try await service.volume(name).latestVersion == 1)
            #expect(try await service.text("fresh", in: name) == nil)

            _ = try await service.commit(Changeset([
                .put(try VolumePath("versioned"), file, precondition: .atVersion(1)),
                .put(try VolumePath("fresh"), file, precondition: .absent),
            ]), to: name, options: CommitOptions(author: "t"))
            #expect(try await service.entry(at: try VolumePath("versioned"), in: name, version: nil)?.version == 2)
        }
    }

    @Test(arguments: StoreSetup.all)
    func aDirectoryRemovalRemovesWhatItHoldsWhenItApplies(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(name)
            try await service.put(["cache/a": "a"], in: name)
            // Another writer adds a file after the remover last looked; the removal still takes it.
            let other = try await fixture.reopen()
            try await other.put(["cache/b": "b", "keep": "k"], in: name)
            try await other.close()
            let notEmpty = await #expect(throws: SiloError.self) {
                try await service.commit(Changeset([.remove(try VolumePath("cache"), recursive: false)]), to: name, options: CommitOptions(author: "t"))
            }
            #expect(notEmpty?.code == .directoryNotEmpty)
            _ = try await service.commit(Changeset([.remove(try VolumePath("cache"), recursive: true)]), to: name, options: CommitOptions(author: "t"))
            #expect(try await service.list(.root, in: name, version: nil).map(\.path.name) == ["keep"])
            #expect(try await service.history(of: name).last?.filesRemoved == 2)
        }
    }

    @Test(arguments: StoreSetup.all)
    func aRemovalIfPresentTakesWhatIsThereAndIgnoresWhatIsNot(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(name)
            try await service.put(["dir/a": "a", "dir/sub/b": "b", "keep": "k"], in: name)
            // A mount deleted "dir" and "gone"; another writer had already removed "gone" (never there).
            let result = try await service.commit(
                Changeset([.removeIfPresent(try VolumePath("dir")), .removeIfPresent(try VolumePath("gone"))]),
                to: name, options: CommitOptions(author: "t")
            )
            #expect(result.version.version == 2 && result.version.filesRemoved == 2)
            #expect(try await service.list(.root, in: name, version: nil).map(\.path.name) == ["keep"])
            // It travels through the HTTP API's JSON as a removal with ifPresent.
            let encoded = try JSONEncoder().encode(Change.removeIfPresent(try VolumePath("x")))
            #expect(try JSONDecoder().decode(Change.self, from: encoded) == .removeIfPresent(try VolumePath("x")))
        }
    }

    @Test(arguments: StoreSetup.all)
    func pathsOfTheWrongKindAreRefused(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(name)
            try await service.put(["file": "f", "dir/x": "x"], in: name)
            let file = FilePut(content: .inline([1]), size: 1, mtimeNanoseconds: 0)
            let cases: [(Change, SiloError.Code)] = [
                (.put(try VolumePath("file/below"), file), .notADirectory),
                (.put(try VolumePath("dir"), file), .isADirectory),
                (.makeDirectory(try VolumePath("file"), mtimeNanoseconds: 0), .pathExists),
                (.remove(try VolumePath("nothing"), recursive: true), .pathNotFound),
                (.remove(.root, recursive: true), .invalidArgument),
            ]
            for (change, code) in cases {
                let error = await #expect(throws: SiloError.self) {
                    try await service.commit(Changeset([.put(try VolumePath("side"), file), change]), to: name, options: CommitOptions(author: "t"))
                }
                #expect(error?.code == code)
            }
            #expect(try await service.volume(name).latestVersion == 1)
            #expect(try await service.text("side", in: name) == nil)
        }
    }

    @Test(arguments: StoreSetup.all)
    func ownersAreRecordedPerPathAndReadBackAtEveryVersion(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(name)
            let alice = Owner(uid: 1001, gid: 1001)
            let bob = Owner(uid: 1002, gid: 100)
            _ = try await service.commit(Changeset([
                .put(try VolumePath("a/f"), FilePut(content: .inline([1]), size: 1, mtimeNanoseconds: 0, owner: alice)),
                .makeDirectory(try VolumePath("b"), mtimeNanoseconds: 0, owner: bob),
                .symlink(try VolumePath("b/l"), target: "../a/f", mtimeNanoseconds: 0, owner: bob),
                .put(try VolumePath("unowned"), FilePut(content: .inline([2]), size: 1, mtimeNanoseconds: 0)),
            ]), to: name, options: CommitOptions(author: "t"))
            // A later commit gives the file to bob; version 1 still says alice.
            _ = try await service.commit(Changeset([
                .put(try VolumePath("a/f"), FilePut(content: .inline([3]), size: 1, mtimeNanoseconds: 0, owner: bob)),
            ]), to: name, options: CommitOptions(author: "t"))
            let listed = Dictionary(uniqueKeysWithValues: try await service.list(.root, in: name, version: nil).map { ($0.path.rawValue, $0.owner) })
            #expect(listed == ["a": nil, "b": bob, "unowned": nil])
            #expect(try await service.entry(at: try VolumePath("b/l"), in: name, version: nil)?.owner == bob)
            #expect(try await service.entry(at: try VolumePath("a/f"), in: name, version: nil)?.owner == bob)
            #expect(try await service.entry(at: try VolumePath("a/f"), in: name, version: Version(1))?.owner == alice)
        }
    }

    @Test(arguments: StoreSetup.all)
    func anAttributeChangeAppliesToWhatThePathHoldsWhenItLands(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(name)
            try await service.put(["small": "v1", "dir/inside": "i"], in: name)
            let big = try await service.uploadBlocks(pseudoRandomBytes(count: 70_000, seed: 3), blockSize: 65_536)
            _ = try await service.commit(Changeset([
                .put(try VolumePath("big"), FilePut(content: big, size: 70_000, mtimeNanoseconds: 0)),
            ]), to: name, options: CommitOptions(author: "t"))
            try await service.put(["small": "v2, written after the attributes were read"], in: name)
            let owner = Owner(uid: 1001, gid: 100)
            _ = try await service.commit(Changeset([
                .setAttributes(try VolumePath("small"), AttributeChanges(mode: 0o600, mtimeNanoseconds: 5, owner: owner)),
                .setAttributes(try VolumePath("big"), AttributeChanges(mode: 0o640)),
                .setAttributes(try VolumePath("dir"), AttributeChanges(mode: 0o700, owner: owner)),
                .setAttributes(try VolumePath("gone"), AttributeChanges(mode: 0o600)),
            ]), to: name, options: CommitOptions(author: "t"))
            let small = try #require(try await service.entry(at: try VolumePath("small"), in: name, version: nil))
            #expect(small.mode == 0o600 && small.mtimeNanoseconds == 5 && small.owner == owner)
            #expect(try await service.text("small", in: name) == "v2, written after the attributes were read")
            #expect(try await service.read(try VolumePath("big"), in: name) == pseudoRandomBytes(count: 70_000, seed: 3))
            #expect(try await service.entry(at: try VolumePath("big"), in: name, version: nil)?.mode == 0o640)
            let directory = try #require(try await service.entry(at: try VolumePath("dir"), in: name, version: nil))
            #expect(directory.mode == 0o700 && directory.owner == owner)
            #expect(try await service.text("dir/inside", in: name) == "i")
            #expect(try await service.entry(at: try VolumePath("gone"), in: name, version: nil) == nil)
        }
    }

    @Test(arguments: StoreSetup.all)
    func aFifoIsCommittedAsAPathWithoutContent(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(name)
            _ = try await service.commit(Changeset([
                .fifo(try VolumePath("run/jobs"), mode: 0o640, mtimeNanoseconds: 7, owner: Owner(uid: 5, gid: 6)),
            ]), to: name, options: CommitOptions(author: "t"))
            let fifo = try #require(try await service.entry(at: try VolumePath("run/jobs"), in: name, version: nil))
            #expect(fifo.kind == .fifo && fifo.size == 0 && fifo.mode == 0o640 && fifo.content == nil && fifo.owner == Owner(uid: 5, gid: 6))
            // Nothing is written beneath it, and a file replaces it as it would a file.
            let error = await #expect(throws: SiloError.self) { try await service.put(["run/jobs/x": "x"], in: self.name) }
            #expect(error?.code == .notADirectory)
            try await service.put(["run/jobs": "now a file"], in: name)
            #expect(try await service.text("run/jobs", in: name) == "now a file")
        }
    }

    @Test(arguments: StoreSetup.all)
    func aRetriedCommitIDAppliesOnce(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(name)
            let first = try await service.put(["a": "1"], in: name, commitID: "c-1")
            try await service.put(["a": "2"], in: name)
            let retry = try await service.put(["a": "1"], in: name, commitID: "c-1")
            #expect(!first.wasRetry)
            #expect(retry.wasRetry)
            #expect(retry.version == first.version)
            #expect(try await service.text("a", in: name) == "2")
            #expect(try await service.volume(name).latestVersion == 2)
        }
    }

    @Test(arguments: StoreSetup.all)
    func identicalBlocksAreStoredOnce(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(name)
            let bytes = pseudoRandomBytes(count: 4096, seed: 3) + pseudoRandomBytes(count: 4096, seed: 3)
            // The block's SHA-256 as `sha256sum` prints it for these 4096 bytes, computed outside Silo:
            // both halves are that block, and it is stored once, under that name.
            let known = "6791d675d573231147df3a853f54aebd3d151a6631fd9dbc219d3fa680b89ce0"
            let content = try await service.uploadBlocks(bytes, blockSize: 4096)
            let again = try await service.uploadBlocks(bytes, blockSize: 4096)
            #expect(content.blockHashes.map(\.hex) == [known, known])
            #expect(again.blockHashes.map(\.hex) == [known, known])
            #expect(fixture.blockFiles().map { String($0.split(separator: "/").last ?? "") } == [known])
            #expect(try await service.missingBlocks(content.blockHashes + [SHA256Hasher.hash([9])]) == [SHA256Hasher.hash([9])])
        }
    }

    @Test(arguments: StoreSetup.all)
    func aCorruptBlockIsAnErrorNeverData(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(name)
            let bytes = pseudoRandomBytes(count: 100_000, seed: 4)
            let content = try await service.uploadBlocks(bytes, blockSize: 65536)
            _ = try await service.commit(Changeset([
                .put(try VolumePath("data"), FilePut(content: content, size: 100_000, mtimeNanoseconds: 0)),
            ]), to: name, options: CommitOptions(author: "t"))
            #expect(try await service.read(try VolumePath("data"), in: name, range: 65530..<65540) == Array(bytes[65530..<65540]))

            let damaged = fixture.home + "/blocks/default/" + String(content.blockHashes[1].hex.prefix(2)) + "/" + content.blockHashes[1].hex
            chmod(damaged, 0o644)
            var onDisk = try [UInt8](Data(contentsOf: URL(fileURLWithPath: damaged)))
            onDisk[100] ^= 0xFF
            try Data(onDisk).write(to: URL(fileURLWithPath: damaged))

            // The undamaged first block still reads; anything touching the second fails.
            #expect(try await service.read(try VolumePath("data"), in: name, range: 0..<1000) == Array(bytes[0..<1000]))
            let error = await #expect(throws: SiloError.self) { try await service.read(try VolumePath("data"), in: name) }
            #expect(error?.code == .corruptBlock)
            #expect(error?.message.contains(content.blockHashes[1].hex) == true)
        }
    }

    @Test(arguments: StoreSetup.all)
    func aCommitNamingAMissingBlockFailsWhole(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(name)
            let never = SHA256Hasher.hash([1, 2, 3])
            let error = await #expect(throws: SiloError.self) {
                try await service.commit(Changeset([
                    .put(try VolumePath("small"), FilePut(content: .inline([1]), size: 1, mtimeNanoseconds: 0)),
                    .put(try VolumePath("big"), FilePut(content: .blocks([never], blockSize: 3), size: 3, mtimeNanoseconds: 0)),
                ]), to: name, options: CommitOptions(author: "t"))
            }
            #expect(error?.code == .missingBlock)
            #expect(try await service.volume(name).latestVersion == 0)
        }
    }

    /// A one-file commit runs the same statements, reading the same few rows, in a volume of 2,000
    /// files as in one of 20,000, and SQLite plans each of them as a lookup by key, never a scan of a
    /// table or of a whole volume: the cost follows the change, not the volume. Counted through a
    /// backend that records what the store asks of the database.
    @Test(arguments: Backend.allCases)
    func aCommitCostsTheSizeOfItsChangeNotOfTheVolume(backend: Backend) async throws {
        let directory = try TemporaryDirectory("silo-commit-cost")
        defer { directory.remove() }
        let inner: SQLiteBackend
        switch backend {
        case .sqlite: inner = try await SQLiteBackend.open(path: directory.file("metadata.sqlite"), logger: Logger(label: "silo-test"))
        }
        let recording = RecordingBackend(inner)
        let store = VolumeStore(metadata: try await SQLMetadataStore(backend: recording), blobs: try LocalBlobStore(root: directory.file("blocks")))
        func commit(_ files: [String: String], to volume: VolumeName) async throws -> CommitResult {
            let changes: [Change] = try files.sorted { $0.key < $1.key }.map { path, text in
                .put(try VolumePath(path), FilePut(content: .inline(Array(text.utf8)), size: Int64(text.utf8.count), mtimeNanoseconds: 0))
            }
            return try await store.commit(Changeset(changes), to: volume, workspace: "default", options: CommitOptions(author: "t"))
        }

        var measured: [Int: [RecordingBackend.Statement]] = [:]
        for count in [2_000, 20_000] {
            let volume = try VolumeName("files-\(count)")
            _ = try await store.createVolume(volume, workspace: "default", author: "t")
            var files: [String: String] = [:]
            for index in 0..<count { files["bulk/\(index / 100)/f\(index)"] = "\(index)" }
            #expect(try await commit(files, to: volume).version.filesAdded == Int64(count))
            _ = recording.take()
            let one = try await commit(["bulk/7/f700": "changed"], to: volume)
            measured[count] = recording.take()
            #expect(one.version.filesChanged == 1 && one.version.filesAdded == 0)
            #expect(try await store.metadata.tree(.root, in: volume, workspace: "default", version: nil).count == count + count / 100 + 1)
        }
        let small = try #require(measured[2_000])
        let large = try #require(measured[20_000])
        #expect(!small.isEmpty)
        #expect(small.map(\.sql) == large.map(\.sql), "the commit's statements depend on the volume's size")
        #expect(small.map(\.rows) == large.map(\.rows), "the commit read more rows from the larger volume")
        #expect(large.map(\.rows).reduce(0, +) <= 10, "rows read: \(large.map(\.rows))")
        for statement in large {
            let plan = try await recording.plan(of: statement.query)
            #expect(plan.allSatisfy(Self.isBounded), "\(statement.sql) is planned as \(plan)")
        }
        try await recording.close()
    }

    /// Whether a step of SQLite's query plan visits only rows it looks up by key: a search (never a
    /// scan), and on `entries` one by path or parent, not every row of the volume or version.
    static func isBounded(_ step: String) -> Bool {
        if step.hasPrefix("SCAN ") { return false }
        guard step.hasPrefix("SEARCH entries ") else { return true }
        return step.contains("path=") || step.contains("path>") || step.contains("parent=")
    }
}
