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
