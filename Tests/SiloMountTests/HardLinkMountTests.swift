import Foundation
import SiloClient
import SiloCore
import SiloMount
import SiloTesting
import Testing

/// Hard links in a mount's semantics: two names, one inode and one file, counted, committed as one
/// file and seen so by another mount.
@Suite(.timeLimit(.minutes(2)))
struct HardLinkMountTests {
    func mount(_ fixture: StoreFixture, _ volume: VolumeName, scratch: String) async throws -> Mount {
        let latest = try await fixture.service.volume(volume).latestVersion
        return Mount(fileSystem: try VolumeFileSystem(service: fixture.service, volume: volume, version: latest, scratch: fixture.directory.file(scratch)))
    }

    @Test func twoNamesAreOneFileInTheMountAndInTheVolume() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let volume = try VolumeName("v")
            _ = try await fixture.service.createVolume(volume)
            try await fixture.service.put(["base.txt": "base"], in: volume)
            let writer = try await mount(fixture, volume, scratch: "a")
            try await writer.overwrite("new.txt", Array("one".utf8))
            try await writer.mkdir("d")
            try await writer.link("new.txt", as: "d/second.txt")
            try await writer.link("base.txt", as: "base-link.txt")

            // One inode, two names, and what is written through one name is read through the other.
            #expect(try await writer.resolve("new.txt") == writer.resolve("d/second.txt"))
            #expect(try await writer.stat("new.txt").linkCount == 2)
            #expect(try await writer.stat("base.txt").linkCount == 2)
            try await writer.write("d/second.txt", at: 3, Array(" two".utf8))
            #expect(try await writer.read("new.txt") == Array("one two".utf8))
            try await writer.chmod("new.txt", 0o600)
            #expect(try await writer.stat("d/second.txt").mode == 0o600)
            try await writer.write("base-link.txt", at: 0, Array("BASE".utf8))
            #expect(try await writer.read("base.txt") == Array("BASE".utf8))

            _ = try await writer.fileSystem.commit(author: "test")
            let committed = try await fixture.service.tree(.root, in: volume, version: nil).filter { $0.kind == .file }
            let ids = Dictionary(grouping: committed, by: { $0.fileID })
            #expect(ids.count == 2, "\(committed.map { "\($0.path) \($0.fileID?.description ?? "-")" })")
            #expect(committed.allSatisfy { $0.linkCount == 2 })
            #expect(try await fixture.service.text("d/second.txt", in: volume) == "one two")
            #expect(try await fixture.service.text("base-link.txt", in: volume) == "BASE")
            #expect(try await fixture.service.entry(at: try VolumePath("d/second.txt"), in: volume, version: nil)?.mode == 0o600)

            // Another mount sees one file under two names; removing or renaming one name keeps the other.
            let reader = try await mount(fixture, volume, scratch: "b")
            #expect(try await reader.resolve("new.txt") == reader.resolve("d/second.txt"))
            try await reader.write("new.txt", at: 0, Array("ONE".utf8))
            #expect(try await reader.read("d/second.txt") == Array("ONE two".utf8))
            try await reader.unlink("new.txt")
            #expect(try await reader.stat("d/second.txt").linkCount == 1)
            try await reader.rename("base.txt", to: "d/moved.txt")
            #expect(try await reader.stat("d/moved.txt").linkCount == 2)
            #expect(try await reader.read("base-link.txt") == Array("BASE".utf8))
            _ = try await reader.fileSystem.commit(author: "test")
            #expect(try await fixture.service.text("d/second.txt", in: volume) == "ONE two")
            #expect(try await fixture.service.entry(at: try VolumePath("d/second.txt"), in: volume, version: nil)?.linkCount == 1)
            #expect(try await fixture.service.entry(at: try VolumePath("d/moved.txt"), in: volume, version: nil)?.linkCount == 2)

            // The first mount, reloaded, sees it all.
            _ = try await writer.fileSystem.reload()
            #expect(try await writer.read("d/second.txt") == Array("ONE two".utf8))
            #expect(try await writer.stat("base-link.txt").linkCount == 2)
            #expect(try await writer.resolve("d/moved.txt") == writer.resolve("base-link.txt"))
        }
    }

    @Test func onlyRegularFilesTakeMoreNames() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let volume = try VolumeName("v")
            _ = try await fixture.service.createVolume(volume)
            let mount = try await mount(fixture, volume, scratch: "a")
            try await mount.mkdir("d")
            try await mount.symlink("s", to: "d")
            try await mount.overwrite("f", [1])
            for source in ["d", "s"] {
                await #expect(throws: SiloError.self) { try await mount.link(source, as: source + "2") }
            }
            await #expect(throws: SiloError.self) { try await mount.link("f", as: "d") }
            #expect(try await mount.stat("f").linkCount == 1)
        }
    }
}
