import Foundation
import SiloClient
import SiloCore
import SiloMount
import SiloTesting
import Testing

/// Sequences the reference-model run found committing the wrong thing, each kept as a test.
@Suite(.timeLimit(.minutes(1)))
struct CommitRegressionTests {
    /// A writable mount of a volume holding `files`, with what a test needs to check a commit.
    struct Setup {
        let fixture: StoreFixture
        let volume: VolumeName
        let mount: Mount

        init(_ fixture: StoreFixture, files: [String: String]) async throws {
            self.fixture = fixture
            volume = try VolumeName("v")
            _ = try await fixture.service.createVolume(volume)
            try await fixture.service.put(files, in: volume)
            let latest = try await fixture.service.volume(volume).latestVersion
            mount = Mount(
                fileSystem: try VolumeFileSystem(
                    service: fixture.service, volume: volume, version: latest, scratch: fixture.directory.file("scratch")
                )
            )
        }

        /// The latest committed version's entry at `path`.
        func committed(_ path: String) async throws -> Entry? {
            try await fixture.service.entry(at: try VolumePath(path), in: volume, version: nil)
        }
    }

    @Test func aChmodOfASmallCommittedFileCommitsTheModeAndKeepsTheBytes() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let setup = try await Setup(fixture, files: ["small.txt": "hello"])
            try await setup.mount.chmod("small.txt", 0o600)
            _ = try await setup.mount.fileSystem.commit(author: "test")
            #expect(try await setup.committed("small.txt")?.mode == 0o600)
            #expect(try await fixture.service.text("small.txt", in: setup.volume) == "hello")
        }
    }

    @Test func aDirectoryMadeAndRemovedWhereACommittedFileWasRemovesTheFile() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let setup = try await Setup(fixture, files: ["keep.txt": "k"])
            try await setup.mount.overwrite("name", Array("file".utf8))
            _ = try await setup.mount.fileSystem.commit(author: "test")
            try await setup.mount.unlink("name")
            try await setup.mount.mkdir("name")
            try await setup.mount.rmdir("name")
            _ = try await setup.mount.fileSystem.commit(author: "test")
            #expect(try await setup.committed("name") == nil)
            #expect(try await setup.committed("keep.txt") != nil)
        }
    }

    @Test func aFileRecreatedAndCommittedSurvivesALaterCommitThatChangesNothingInIt() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let setup = try await Setup(fixture, files: ["f": "one"])
            try await setup.mount.unlink("f")
            try await setup.mount.overwrite("f", Array("two".utf8))
            _ = try await setup.mount.fileSystem.commit(author: "test")
            // The same mode again: the file is as last committed, so nothing of it is sent.
            try await setup.mount.chmod("f", 0o644)
            _ = try await setup.mount.fileSystem.reload()
            _ = try await setup.mount.fileSystem.commit(author: "test")
            #expect(try await fixture.service.text("f", in: setup.volume) == "two")
        }
    }
}

/// A commit that only changes a file's attributes leaves its content as the volume holds it then.
@Suite(.timeLimit(.minutes(1)))
struct AttributeCommitTests {
    @Test func aChmodCommittedAfterAnotherMountsWriteKeepsThatWrite() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let first = try await CommitRegressionTests.Setup(fixture, files: ["f": "original", "d/x": "x"])
            let second = Mount(
                fileSystem: try VolumeFileSystem(
                    service: fixture.service, volume: first.volume, version: Version(1), scratch: fixture.directory.file("scratch-2"))
            )
            // The first mount changes only the file's mode and owner, and a directory's.
            let file = try await first.mount.resolve("f")
            _ = try await first.mount.fileSystem.setAttributes(file, mode: 0o600, uid: 1001, gid: 100)
            let directory = try await first.mount.resolve("d")
            _ = try await first.mount.fileSystem.setAttributes(directory, mode: 0o700, uid: 1002, gid: 100)
            // Meanwhile the second rewrites the file and commits first.
            try await second.overwrite("f", Array("newer content".utf8))
            _ = try await second.fileSystem.commit(author: "second")
            _ = try await first.mount.fileSystem.commit(author: "first")

            let committed = try #require(try await first.committed("f"))
            #expect(try await fixture.service.text("f", in: first.volume) == "newer content")
            #expect(committed.mode == 0o600 && committed.owner == Owner(uid: 1001, gid: 100))
            let folder = try #require(try await first.committed("d"))
            #expect(folder.mode == 0o700 && folder.owner == Owner(uid: 1002, gid: 100))
            #expect(try await fixture.service.text("d/x", in: first.volume) == "x")
        }
    }

    @Test func anAttributeChangeToAPathRemovedMeanwhileChangesNothing() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let setup = try await CommitRegressionTests.Setup(fixture, files: ["f": "f"])
            _ = try await setup.mount.fileSystem.setAttributes(try await setup.mount.resolve("f"), mode: 0o600)
            _ = try await fixture.service.commit(Changeset([.removeIfPresent(try VolumePath("f"))]), to: setup.volume, options: CommitOptions(author: "t"))
            _ = try await setup.mount.fileSystem.commit(author: "test")
            #expect(try await setup.committed("f") == nil)
        }
    }
}
