import SiloCore
import Testing

@Suite(.timeLimit(.minutes(5))) struct CoreModelTests {
    @Test(arguments: ["a", "my-volume", "Model_v1.2", String(repeating: "x", count: 64)])
    func validVolumeNames(text: String) throws {
        #expect(try VolumeName(text).rawValue == text)
    }

    @Test(arguments: ["", "has space", "slash/", "..", ".", "naïve", "nul\u{0}", String(repeating: "x", count: 65)])
    func invalidVolumeNamesAreRefusedWithAReason(text: String) {
        let error = #expect(throws: SiloError.self) { try VolumeName(text) }
        #expect(error?.code == .invalidName)
        #expect(error?.message.contains("invalid volume name") == true)
    }

    @Test func pathsAreNormalisedRelativeToTheRoot() throws {
        #expect(try VolumePath("/a//b/./c/").rawValue == "a/b/c")
        #expect(try VolumePath("a/b").description == "/a/b")
        #expect(try VolumePath("/").isRoot)
        #expect(try VolumePath("").isRoot)
        let path = try VolumePath("x/y/z.txt")
        #expect(path.name == "z.txt")
        #expect(path.parent.rawValue == "x/y")
        #expect(path.ancestors.map(\.rawValue) == ["x", "x/y"])
        #expect(path.isWithin(try VolumePath("x")))
        #expect(!path.isWithin(try VolumePath("x/y/z")))
        #expect(!(try VolumePath("xy")).isWithin(try VolumePath("x")))
    }

    @Test(arguments: ["../etc/passwd", "/a/../../b", "a/..", "nul\u{0}byte", "tab\tname", String(repeating: "n", count: 256), String(repeating: "a/", count: 2100)])
    func escapingOrMalformedPathsAreRefused(text: String) {
        let error = #expect(throws: SiloError.self) { try VolumePath(text) }
        #expect(error?.code == .invalidPath)
    }

    @Test func sha256MatchesKnownDigests() throws {
        #expect(SHA256Hasher.hash([]).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256Hasher.hash(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let hasher = SHA256Hasher()
        hasher.update(Array("a".utf8))
        hasher.update(Array("bc".utf8))
        #expect(hasher.finalize() == SHA256Hasher.hash(Array("abc".utf8)))
        // Reused after finalize, it starts afresh.
        hasher.update([])
        #expect(hasher.finalize().hex.hasPrefix("e3b0c442"))
    }

    @Test func blocksCarryTheirVerifiedHash() throws {
        let block = Block(bytes: [1, 2, 3])
        #expect(block.hash == SHA256Hasher.hash([1, 2, 3]))
        let error = #expect(throws: SiloError.self) { try Block(bytes: [1, 2, 4], expected: block.hash) }
        #expect(error?.code == .corruptBlock)
        #expect(try BlockHash(hex: block.hash.hex) == block.hash)
        #expect(try BlockHash.unpack(BlockHash.pack([block.hash, SHA256Hasher.hash([])])) == [block.hash, SHA256Hasher.hash([])])
        #expect(throws: SiloError.self) { try BlockHash(hex: "zz") }
    }

    @Test func blockLayoutCoversRanges() {
        let layout = BlockLayout(blockSize: 10)
        #expect(layout.blocks(covering: 0..<10) == 0...0)
        #expect(layout.blocks(covering: 5..<25) == 0...2)
        #expect(layout.blocks(covering: 10..<11) == 1...1)
        #expect(layout.blockCount(forSize: 0) == 0)
        #expect(layout.blockCount(forSize: 21) == 3)
    }
}

@Suite struct ChangesetBuilderTests {
    @Test func aCopiedTreeKeepsItsShapeUnderTheTarget() throws {
        let source = try VolumePath("data")
        let entries = [
            Entry(path: source, kind: .directory, size: 0, mode: 0o750, mtimeNanoseconds: 1, version: Version(1)),
            Entry(
                path: try VolumePath("data/a.txt"), kind: .file, size: 1, mode: 0o600, mtimeNanoseconds: 2, version: Version(1),
                content: .inline([7])
            ),
            Entry(
                path: try VolumePath("data/sub/link"), kind: .symlink, size: 3, mode: 0o777, mtimeNanoseconds: 3, version: Version(1),
                symlinkTarget: "../a.txt"
            ),
        ]
        var builder = ChangesetBuilder()
        try builder.copyTree(entries, from: source, to: try VolumePath("backup/data"))
        #expect(
            builder.changes == [
                .makeDirectory(try VolumePath("backup/data"), mode: 0o750, mtimeNanoseconds: 1),
                .put(try VolumePath("backup/data/a.txt"), FilePut(content: .inline([7]), size: 1, mode: 0o600, mtimeNanoseconds: 2)),
                .symlink(try VolumePath("backup/data/sub/link"), target: "../a.txt", mtimeNanoseconds: 3),
            ]
        )
    }

    @Test func aFileWithoutItsContentCannotBeCopied() throws {
        var builder = ChangesetBuilder()
        let listed = Entry(path: try VolumePath("f"), kind: .file, size: 5, mode: 0o644, mtimeNanoseconds: 0, version: Version(1))
        #expect(throws: SiloError.self) { try builder.copy(listed, to: try VolumePath("g")) }
        #expect(builder.isEmpty)
    }
}
