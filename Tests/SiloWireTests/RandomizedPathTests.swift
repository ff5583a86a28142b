import PropertyBased
import SiloCore
import Testing

/// Paths are validated and compared as bytes. Pieces include the ones that once slipped through:
/// combining marks after `/` (one grapheme cluster with the slash), prepended concatenation marks,
/// NFC and NFD forms of the same letter.
@Suite(.timeLimit(.minutes(5))) struct RandomizedPathTests {
    static let pieces = [
        "/", ".", "..", "a", "é", "e\u{0301}", "\u{0301}", "\u{0600}", "\u{200D}", "\u{FEFF}", "\0", "\u{7F}", "\n", " ", "x",
        "/\u{0301}", "\u{1F600}", "\\", "%2e",
    ]

    static func pick() -> Generator<String, Shrink.None<Int>> {
        Gen.int(in: 0...(pieces.count - 1)).withoutShrink().map { pieces[$0] }
    }

    @Test func acceptedPathsHaveOnlyPlainNamesByTheirBytes() async {
        let text = Self.pick().array(of: 0...12).map { $0.joined() }
        await propertyCheck(count: 5000, input: text) { text in
            guard let path = try? VolumePath(text), !path.isRoot else { return }
            let bytes = Array(path.rawValue.utf8)
            #expect(bytes.first != UInt8(ascii: "/") && bytes.last != UInt8(ascii: "/"))
            for component in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
                #expect(!component.isEmpty, "\(text.debugDescription) gave \(path.rawValue.debugDescription)")
                #expect(!component.elementsEqual(".".utf8) && !component.elementsEqual("..".utf8), "\(text.debugDescription)")
                #expect(!component.contains { $0 < 0x20 || $0 == 0x7F })
            }
            #expect((try? VolumePath(path.rawValue)) == path)
            #expect(path.components.joined(separator: "/").utf8.elementsEqual(path.rawValue.utf8))
            #expect(path.parent.isRoot || path.isWithin(path.parent))
        }
    }

    @Test func traversalHiddenBehindCombiningMarksIsRefused() {
        for text in ["../\u{0301}pwned", "x\u{0600}/../\u{0301}y", "a/..\u{0301}/../b", "/\u{0301}/../../etc"] {
            let path = try? VolumePath(text)
            #expect(path == nil || !path!.rawValue.utf8.split(separator: UInt8(ascii: "/")).contains { $0.elementsEqual("..".utf8) }, "\(text.debugDescription)")
        }
        #expect(throws: SiloError.self) { try VolumePath("../\u{0301}pwned") }
        #expect(throws: SiloError.self) { try VolumePath("x\u{0600}/../\u{0301}y") }
    }

    @Test func canonicallyEquivalentNamesAreDifferentPaths() throws {
        let composed = try VolumePath("caf\u{E9}")
        let decomposed = try VolumePath("cafe\u{0301}")
        #expect(composed != decomposed)
        #expect(Set([composed, decomposed]).count == 2)
        #expect(try VolumePath("caf\u{E9}/x").isWithin(composed))
        #expect(!(try VolumePath("cafe\u{0301}/x")).isWithin(composed))
    }
}
