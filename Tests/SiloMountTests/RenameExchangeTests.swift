import Foundation
import SiloClient
import SiloCore
import SiloMount
import SiloTesting
import Testing

/// `RENAME_EXCHANGE`: two paths swap places in one step, files and directories with what they hold,
/// and a commit records the swap.
@Suite(.timeLimit(.minutes(2)))
struct RenameExchangeTests {
    @Test func twoPathsSwapInTheMountAndInTheVolume() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let volume = try VolumeName("v")
            _ = try await fixture.service.createVolume(volume)
            try await fixture.service.put(["a.txt": "A", "dir/inside.txt": "in dir", "other/b.txt": "B"], in: volume)
            let latest = try await fixture.service.volume(volume).latestVersion
            let mount = Mount(fileSystem: try VolumeFileSystem(service: fixture.service, volume: volume, version: latest, scratch: fixture.directory.file("s")))
            let inodeOfA = try await mount.resolve("a.txt")
            try await mount.exchange("a.txt", "other/b.txt")
            #expect(try await mount.read("a.txt") == Array("B".utf8))
            #expect(try await mount.read("other/b.txt") == Array("A".utf8))
            #expect(try await mount.resolve("other/b.txt") == inodeOfA)

            // A file and a directory swap, the directory with what it holds; a new file swaps with a base one.
            try await mount.overwrite("new.txt", Array("new".utf8))
            try await mount.exchange("dir", "new.txt")
            #expect(try await mount.stat("dir").kind == .file)
            #expect(try await mount.read("new.txt/inside.txt") == Array("in dir".utf8))
            await #expect(throws: SiloError.self) { try await mount.exchange("a.txt", "missing") }
            await #expect(throws: SiloError.self) { try await mount.exchange("new.txt", "new.txt/inside.txt") }

            _ = try await mount.fileSystem.commit(author: "test")
            #expect(try await fixture.service.text("a.txt", in: volume) == "B")
            #expect(try await fixture.service.text("other/b.txt", in: volume) == "A")
            #expect(try await fixture.service.text("dir", in: volume) == "new")
            #expect(try await fixture.service.text("new.txt/inside.txt", in: volume) == "in dir")
            #expect(try await fixture.service.entry(at: try VolumePath("dir/inside.txt"), in: volume, version: nil) == nil)
        }
    }
}
