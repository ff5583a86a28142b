import Foundation
import SiloCore
import SiloWire
import Testing

/// Owners on the wire: `uid` and `gid` beside the other fields, both or neither.
@Suite struct OwnerWireTests {
    @Test func ownersRoundTripAndAnOwnerIsBothIdsOrNone() throws {
        let path = try VolumePath("f")
        let owned = Change.put(path, FilePut(content: .inline([1]), size: 1, mtimeNanoseconds: 0, owner: Owner(uid: 1001, gid: 100)))
        let json = try JSONEncoder().encode(owned)
        #expect(try JSONDecoder().decode(Change.self, from: json) == owned)
        let text = String(decoding: json, as: UTF8.self)
        #expect(text.contains(#""uid":1001"#) && text.contains(#""gid":100"#))
        // Without an owner, neither key is sent: what servers before owners understood.
        let plain = try JSONEncoder().encode(Change.makeDirectory(path, mtimeNanoseconds: 0))
        #expect(!String(decoding: plain, as: UTF8.self).contains("uid"))

        for half in [#"{"op":"mkdir","path":"d","mtimeNs":0,"uid":5}"#, #"{"op":"symlink","path":"l","target":"f","mtimeNs":0,"gid":5}"#] {
            #expect(throws: DecodingError.self) { try JSONDecoder().decode(Change.self, from: Data(half.utf8)) }
        }
        // Ids beyond 32 bits are refused, not wrapped.
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Change.self, from: Data(#"{"op":"mkdir","path":"d","mtimeNs":0,"uid":4294967296,"gid":0}"#.utf8))
        }
    }

    @Test func anAttributeChangeCarriesOnlyWhatChanges() throws {
        let change = Change.setAttributes(try VolumePath("d/f"), AttributeChanges(mode: 0o600, owner: Owner(uid: 1, gid: 2)))
        let json = String(decoding: try JSONEncoder().encode(change), as: UTF8.self)
        #expect(json.contains(#""op":"setattr""#) && !json.contains("mtimeNs"))
        #expect(try JSONDecoder().decode(Change.self, from: Data(json.utf8)) == change)
        let bare = try JSONDecoder().decode(Change.self, from: Data(#"{"op":"setattr","path":"f"}"#.utf8))
        #expect(bare == .setAttributes(try VolumePath("f"), AttributeChanges()))
    }
}
