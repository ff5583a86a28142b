import Foundation
import SiloClient
import SiloCore
import SiloStore
import SiloTesting
import Testing

/// Files under several names (hard links) in the store: one file, whatever name its content or
/// attributes come through, counted and versioned like everything else.
@Suite(.timeLimit(.minutes(5))) struct HardLinkTests {
    let name = try! VolumeName("vol")

    func file(_ text: String, mode: UInt32 = 0o644, id: FileID? = nil) -> FilePut {
        FilePut(content: .inline(Array(text.utf8)), size: Int64(text.utf8.count), mode: mode, mtimeNanoseconds: 0, fileID: id)
    }

    @Test(arguments: StoreSetup.all)
    func namesOfOneFileShareContentAttributesAndCount(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            let (a, b, c) = (try VolumePath("a"), try VolumePath("dir/b"), try VolumePath("c"))
            let id = FileID.random()
            _ = try await service.createVolume(name)
            _ = try await service.commit(Changeset([.put(a, file("first", id: id)), .link(b, file("ignored", id: id))]), to: name, options: CommitOptions(author: "t"))
            #expect(try await service.text("dir/b", in: name) == "first")
            let listed = try await service.entry(at: b, in: name, version: nil)
            #expect(listed?.fileID == id)
            #expect(listed?.linkCount == 2)

            // Content through one name is the other's too; attributes through the other reach both.
            _ = try await service.commit(Changeset([.put(b, file("second", id: id))]), to: name, options: CommitOptions(author: "t"))
            #expect(try await service.text("a", in: name) == "second")
            _ = try await service.commit(
                Changeset([.setAttributes(a, AttributeChanges(mode: 0o600, owner: Owner(uid: 7, gid: 8)))]), to: name,
                options: CommitOptions(author: "t"))
            let shown = try await service.entry(at: b, in: name, version: nil)
            #expect(shown?.mode == 0o600)
            #expect(shown?.owner == Owner(uid: 7, gid: 8))

            // A third name joins the file as the volume holds it then, not as the link carried it.
            _ = try await service.commit(Changeset([.link(c, file("stale", id: id))]), to: name, options: CommitOptions(author: "t"))
            #expect(try await service.text("c", in: name) == "second")
            #expect(try await service.list(.root, in: name, version: nil).first { $0.path == c }?.linkCount == 3)

            // Removing a name keeps the others; the count follows, and older versions keep theirs.
            let removed = try await service.commit(Changeset([.remove(a, recursive: false)]), to: name, options: CommitOptions(author: "t"))
            #expect(try await service.text("c", in: name) == "second")
            #expect(try await service.entry(at: c, in: name, version: nil)?.linkCount == 2)
            #expect(try await service.entry(at: c, in: name, version: Version(removed.version.version.rawValue - 1))?.linkCount == 3)
            #expect(try await service.tree(.root, in: name, version: nil).filter { $0.fileID == id }.map(\.linkCount) == [2, 2])

            // A link to a file the volume no longer holds under any name puts what it carries.
            let other = FileID.random()
            _ = try await service.commit(Changeset([.link(try VolumePath("d"), file("carried", id: other))]), to: name, options: CommitOptions(author: "t"))
            #expect(try await service.text("d", in: name) == "carried")
            #expect(try await service.entry(at: try VolumePath("d"), in: name, version: nil)?.linkCount == 1)
        }
    }

    @Test(arguments: StoreSetup.all)
    func concurrentWritersThroughDifferentNamesLastOneWinsForTheFile(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            let id = FileID.random()
            _ = try await service.createVolume(name)
            _ = try await service.commit(
                Changeset([.put(try VolumePath("x"), file("base", id: id)), .link(try VolumePath("y"), file("base", id: id))]), to: name,
                options: CommitOptions(author: "t"))
            let writers = [try await fixture.reopen(), try await fixture.reopen()]
            let name = self.name
            let versions = try await withThrowingTaskGroup(of: (String, Version).self) { group in
                for (index, (path, text)) in [("x", "through x"), ("y", "through y")].enumerated() {
                    let writer = writers[index]
                    group.addTask {
                        let put = FilePut(content: .inline(Array(text.utf8)), size: Int64(text.utf8.count), mtimeNanoseconds: 0, fileID: id)
                        let result = try await writer.commit(Changeset([.put(try VolumePath(path), put)]), to: name, options: CommitOptions(author: path))
                        return (text, result.version.version)
                    }
                }
                return try await group.reduce(into: [:]) { $0[$1.1] = $1.0 }
            }
            for writer in writers { try await writer.close() }
            let winner = versions[versions.keys.max()!]!
            #expect(try await service.text("x", in: name) == winner)
            #expect(try await service.text("y", in: name) == winner)
        }
    }

    @Test func linksTravelAndAreCheckedOnTheWire() throws {
        let id = FileID(0x00ab_cdef_0123_4567)
        #expect(id.description == "00abcdef01234567")
        #expect(FileID(hex: "00abcdef01234567") == id)
        #expect(FileID(hex: "abc") == nil)
        #expect(FileID(hex: "00abcdef0123456g") == nil)
        let change = Change.link(try VolumePath("n"), file("t", id: id))
        let encoded = try JSONEncoder().encode(change)
        #expect(try JSONDecoder().decode(Change.self, from: encoded) == change)
        let unnamed = #"{"op":"link","path":"n","size":1,"mtimeNs":0,"inline":"dA=="}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Change.self, from: Data(unnamed.utf8)) }
        var entry = Entry(path: try VolumePath("n"), kind: .file, size: 0, mode: 0o644, mtimeNanoseconds: 0, version: Version(1), fileID: id, linkCount: 3)
        #expect(try JSONDecoder().decode(Entry.self, from: try JSONEncoder().encode(entry)) == entry)
        entry.linkCount = 0
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Entry.self, from: try JSONEncoder().encode(entry)) }
    }
}
