import Foundation
import SiloClient
import SiloCore
import SiloMount
import SiloTesting
import Testing

/// A shared volume's mounts (DESIGN section 2, `NetworkFileSystem`): close-to-open consistency and
/// atomic namespace operations across mounts, each change a commit of its own.
@Suite(.timeLimit(.minutes(2)))
struct SharedVolumeTests {
    let volume = try! VolumeName("shared")

    func mount(_ fixture: StoreFixture, _ scratch: String) async throws -> Mount {
        let latest = try await fixture.service.volume(volume).latestVersion
        return Mount(
            fileSystem: try VolumeFileSystem(
                service: fixture.service, volume: volume, version: latest, scratch: fixture.directory.file(scratch), kind: .shared))
    }

    /// Mounts A and B of a new shared volume.
    func twoMounts(_ fixture: StoreFixture) async throws -> (Mount, Mount) {
        _ = try await fixture.service.createVolume(volume, kind: .shared)
        return (try await mount(fixture, "a"), try await mount(fixture, "b"))
    }

    func text(_ mount: Mount, _ path: String) async throws -> String {
        String(decoding: try await mount.read(path), as: UTF8.self)
    }

    @Test func aCloseIsSeenByTheNextOpenElsewhere() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let (a, b) = try await twoMounts(fixture)
            try await a.mkdir("models")
            try await a.overwrite("models/config.json", Array("v1".utf8))
            #expect(try await text(b, "models/config.json") == "v1")

            // Rewritten in place, and written to a temporary name then renamed over: B's next open sees each.
            try await a.overwrite("models/config.json", Array("v2".utf8))
            #expect(try await text(b, "models/config.json") == "v2")
            try await a.overwrite("models/.config.tmp", Array("v3".utf8))
            try await a.rename("models/.config.tmp", to: "models/config.json")
            #expect(try await text(b, "models/config.json") == "v3")
            #expect(try await b.list("models") == ["config.json": .file])

            // Each change was a commit of its own, with the volume's history to show for it.
            let history = try await fixture.service.history(of: volume)
            #expect(history.count >= 6)
            #expect(try await fixture.service.text("models/config.json", in: volume) == "v3")
            // Nothing waits to be committed, and a mount of a shared volume has nothing to commit.
            #expect(a.fileSystem.changedPaths == 0)
            await #expect(throws: SiloError.self) { _ = try await a.fileSystem.commit(author: "t") }
        }
    }

    /// A mount that listed a directory shows what the volume holds after each of another mount's
    /// changes in it: names added, rewritten, removed with what they held, and linked.
    @Test func listingsAfterAnotherMountsChangesShowWhatTheVolumeHolds() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let (a, b) = try await twoMounts(fixture)
            try await a.mkdir("d")
            try await a.mkdir("d/sub")
            for name in ["m", "c", "x", "a"] { try await a.overwrite("d/\(name)", Array(name.utf8)) }
            try await a.overwrite("d/sub/inner", Array("inner".utf8))
            func expectSameAsTheVolume(_ directory: String) async throws {
                let listed = try await fixture.service.list(try VolumePath(directory), in: volume, version: nil)
                let expected = Dictionary(uniqueKeysWithValues: listed.map { ($0.path.name, $0.kind) })
                #expect(try await b.list(directory) == expected)
                for entry in listed where entry.kind == .file {
                    #expect(try await b.stat(entry.path.rawValue).size == entry.size, "\(entry.path)")
                }
            }
            try await expectSameAsTheVolume("d")
            try await expectSameAsTheVolume("d/sub")
            // Added (sorting between cached names), rewritten with another size, removed.
            try await a.overwrite("d/b", Array("bee".utf8))
            try await a.overwrite("d/m", Array("longer now".utf8))
            try await a.unlink("d/x")
            try await expectSameAsTheVolume("d")
            // A directory removed with what it held, and made again empty.
            try await a.unlink("d/sub/inner")
            try await a.rmdir("d/sub")
            try await a.mkdir("d/sub")
            try await expectSameAsTheVolume("d")
            try await expectSameAsTheVolume("d/sub")
            // A second name: the first name's link count changes too.
            try await a.link("d/a", as: "d/a2")
            try await expectSameAsTheVolume("d")
            #expect(try await b.stat("d/a").linkCount == 2)
        }
    }

    /// A directory's link count (2, and one per directory in it) follows every mount's changes,
    /// in a directory of more names than a mount looks up one by one before listing it: directories
    /// made, removed, renamed in and out, and a file turned into a directory in one commit.
    @Test func aDirectorysLinkCountFollowsEveryMountsChanges() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let (a, b) = try await twoMounts(fixture)
            try await a.mkdir("d")
            for index in 0..<12 { try await a.overwrite("d/f\(index)", Array("\(index)".utf8)) }
            try await a.mkdir("d/s0")
            try await a.mkdir("e")
            try await a.mkdir("e/moving")
            func expectCounted(_ step: String) async throws {
                let listed = try await fixture.service.list(try VolumePath("d"), in: volume, version: nil)
                let expected = 2 + listed.count { $0.kind == .directory }
                // Each moved to the latest version (as its follower does within a second), a name in
                // the directory looked up first, so the count is carried from version to version.
                for mount in [a, b] {
                    try await mount.fileSystem.refresh()
                    _ = try? await mount.stat("d/f3")
                }
                #expect(try await a.stat("d").linkCount == expected, "A, \(step)")
                #expect(try await b.stat("d").linkCount == expected, "B, \(step)")
            }
            try await expectCounted("at first")
            try await a.mkdir("d/s1")
            try await expectCounted("after a mkdir here")
            try await b.mkdir("d/s2")
            try await expectCounted("after a mkdir elsewhere")
            try await b.rename("e/moving", to: "d/moved")
            try await expectCounted("after a directory moved in")
            try await a.rmdir("d/s0")
            try await expectCounted("after a rmdir")
            try await a.rename("d/moved", to: "e/back")
            try await expectCounted("after a directory moved out")
            try await b.unlink("d/f5")
            try await a.overwrite("d/f6", Array("six".utf8))
            try await expectCounted("after files changed")
            // A knows the directory changed (it changed it), B looks up what it was.
            try await a.chmod("d/s1", 0o700)
            try await a.chmod("d/f8", 0o600)
            try await expectCounted("after attributes changed")
            var builder = ChangesetBuilder()
            builder.remove(try VolumePath("d/f7"))
            builder.directory(try VolumePath("d/f7"), mode: 0o755, mtimeNanoseconds: 0)
            _ = try await fixture.service.commit(builder.changeset, to: volume, options: CommitOptions(author: "t"))
            try await expectCounted("after a file became a directory")
        }
    }

    @Test func racingNamesHaveExactlyOneWinner() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let (a, b) = try await twoMounts(fixture)
            // B looks at the root first, so its view is the empty volume when A's changes land.
            #expect(try await b.list("") == [:])
            try await a.mkdir("d")
            try await a.overwrite("f", Array("from a".utf8))

            // O_EXCL create and mkdir: B loses with EEXIST; A's file keeps A's bytes.
            let root = Inode.root
            let lost = await #expect(throws: SiloError.self) { _ = try await b.fileSystem.create("f", in: root, mode: 0o644, exclusive: true) }
            #expect(lost?.code == .pathExists)
            #expect(try await text(b, "f") == "from a")
            let dir = await #expect(throws: SiloError.self) { _ = try await b.fileSystem.makeDirectory("d", in: root, mode: 0o755) }
            #expect(dir?.code == .pathExists)

            // A create without O_EXCL opens what is there instead of replacing it.
            let (node, opened) = try await b.fileSystem.create("g", in: root, mode: 0o644, exclusive: false)
            b.fileSystem.release(node.inode, handle: opened.handle)
            try await a.overwrite("h", Array("h".utf8))
            let (again, reopened) = try await b.fileSystem.create("h", in: root, mode: 0o644, exclusive: false)
            b.fileSystem.release(again.inode, handle: reopened.handle)
            #expect(try await text(b, "h") == "h")

            // Two renames of one file: the second finds it gone. RENAME_NOREPLACE onto a name made
            // meanwhile fails with EEXIST.
            #expect(try await b.list("").keys.contains("f"))
            try await a.rename("f", to: "moved-by-a")
            let rename = await #expect(throws: SiloError.self) { try await b.rename("f", to: "moved-by-b") }
            #expect(rename?.code == .pathNotFound)
            #expect(try await text(b, "moved-by-a") == "from a")
            #expect(try await fixture.service.entry(at: try VolumePath("moved-by-b"), in: volume, version: nil) == nil)

            // Two unlinks: the second gets ENOENT. A link onto a name made meanwhile: EEXIST.
            _ = try await b.list("")
            try await a.unlink("h")
            let unlink = await #expect(throws: SiloError.self) { try await b.unlink("h") }
            #expect(unlink?.code == .pathNotFound)
            _ = try await b.list("")
            try await a.overwrite("taken", Array("t".utf8))
            let link = await #expect(throws: SiloError.self) { try await b.link("moved-by-a", as: "taken") }
            #expect(link?.code == .pathExists)
            #expect(try await text(a, "taken") == "t")
        }
    }

    @Test func racingMountsCreatingOneNameAllAgreeOnOneWinner() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            _ = try await fixture.service.createVolume(volume, kind: .shared)
            var mounts: [Mount] = []
            for index in 0..<4 { mounts.append(try await mount(fixture, "m\(index)")) }
            let results = await withTaskGroup(of: Bool.self) { group in
                for mount in mounts {
                    group.addTask {
                        do {
                            _ = try await mount.fileSystem.makeDirectory("lock", in: .root, mode: 0o755)
                            return true
                        } catch {
                            return false
                        }
                    }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 1)
            #expect(try await fixture.service.list(.root, in: volume, version: nil).map(\.path.name) == ["lock"])
        }
    }
}
