import Foundation
import PropertyBased
import SiloCore
import Testing

@testable import SiloWire

/// Randomized inputs for everything the server parses from a request before a handler runs. Each
/// property holds for every input; a trap anywhere fails the whole run, so these also prove that no
/// input reaches one. The counts keep a CI run to seconds.
@Suite(.timeLimit(.minutes(5))) struct RandomizedParserTests {
    /// Pieces range headers are built from: extreme numbers, separators, junk.
    static let rangePieces = [
        "0", "1", "7", "9223372036854775807", "9223372036854775808", "18446744073709551616", "-1", "-", " ", "\t",
        ",", "+5", "bytes=", "bytes", "=", "a", "00", "4096", "8388608", "99999999999999999999999",
    ]

    /// One of `pieces`, at random.
    static func pick(_ pieces: [String]) -> Generator<String, Shrink.None<Int>> {
        Gen.int(in: 0...(pieces.count - 1)).withoutShrink().map { pieces[$0] }
    }

    @Test func rangeHeadersNeverTrapAndStayInsideTheBody() async {
        let header = Self.pick(Self.rangePieces).array(of: 0...6).map { "bytes=" + $0.joined() }
        let size = Gen<Int64>.oneOf(Gen.int64(in: 0...16), Gen.int64(in: 0...Int64.max), Gen.always(Int64.max))
        await propertyCheck(count: 3000, input: header, size) { header, size in
            do {
                if let range = try ByteRange.resolve(header, size: size) {
                    #expect(range.lowerBound >= 0 && range.upperBound <= size && !range.isEmpty, "\(header) on \(size) gave \(range)")
                }
            } catch {
                #expect(size > 0)
            }
        }
    }

    @Test func rangeHeadersMeanWhatRFC9110Says() throws {
        #expect(try ByteRange.resolve("bytes=0-9223372036854775807", size: 10) == 0..<10)
        #expect(try ByteRange.resolve("bytes=9223372036854775806-9223372036854775807", size: Int64.max) == Int64.max - 1..<Int64.max)
        #expect(try ByteRange.resolve("bytes=-9223372036854775807", size: 10) == 0..<10)
        #expect(try ByteRange.resolve("bytes=2-4", size: 10) == 2..<5)
        #expect(try ByteRange.resolve("bytes=-3", size: 10) == 7..<10)
        #expect(try ByteRange.resolve("bytes=+2-4", size: 10) == nil)
        #expect(try ByteRange.resolve("bytes=18446744073709551616-", size: 10) == nil)
        #expect(throws: RangeNotSatisfiable.self) { try ByteRange.resolve("bytes=10-", size: 10) }
    }

    @Test func queryStringsNeverTrap() async {
        let pieces = ["path", "version", "=", "&", "%", "%2", "%2F", "%C3", "%A9", "%FF", "+", "a", "..", "%00", "é", "\u{0301}"]
        let query = Self.pick(pieces).array(of: 0...10).map { $0.joined() }
        await propertyCheck(count: 3000, input: query) { query in
            for name in ["path", "version"] {
                if let value = try? QueryString(query).value(name) {
                    #expect(String(validating: Array(value.utf8), as: UTF8.self) != nil)
                }
            }
        }
    }

    /// A commit body with numbers anywhere in Int64 (and beyond), odd block sizes and lists of any
    /// length: decoding and validation either refuse it or accept a file whose block arithmetic holds.
    @Test func changesetsNeverTrapAndValidOnesAreConsistent() async {
        let number = Gen<String>.oneOf(
            Gen.int64(in: Int64.min...Int64.max).map { String($0) },
            Gen.int64(in: -2...20_000_000).map { String($0) },
            Self.pick(["9223372036854775807", "9223372036854775808", "-9223372036854775808", "1e30", "0.5", "\"1\""])
        )
        let hash = String(repeating: "ab", count: 32)
        let body = zip(number, number, Gen.int(in: 0...4), Gen.bool, number).map { size, blockSize, count, inline, mtime in
            let content: String =
                inline
                ? #""inline": "\#(Data(repeating: 7, count: count * 3).base64EncodedString())""#
                : #""blocks": [\#(Array(repeating: "\"\(hash)\"", count: count).joined(separator: ","))], "blockSize": \#(blockSize)"#
            let body: String = #"{"commitID": "c", "changes": [{"op": "put", "path": "/f", "size": \#(size), "mtimeNs": \#(mtime), \#(content)}]}"#
            return body
        }
        await propertyCheck(count: 3000, input: body) { body in
            guard let request = try? JSONDecoder().decode(API.CommitRequest.self, from: Data(body.utf8)) else { return }
            let changeset = Changeset(request.changes)
            guard (try? changeset.validate()) != nil else { return }
            for case .put(_, let file, _) in changeset.changes {
                guard case .blocks(let hashes, let blockSize) = file.content else { continue }
                let layout = BlockLayout(blockSize: blockSize)
                #expect(hashes.count == layout.blockCount(forSize: file.size))
                for index in hashes.indices {
                    #expect((1...blockSize).contains(layout.length(ofBlock: index, inFileOf: file.size)))
                }
            }
        }
    }

    @Test func hugeSizesAreRefusedNotTrappedOn() throws {
        let body = #"{"commitID": "c", "changes": [{"op": "put", "path": "/f", "size": 9223372036854775807, "mtimeNs": 0, "blocks": ["\#(String(repeating: "ab", count: 32))"], "blockSize": 8388608}]}"#
        let request = try JSONDecoder().decode(API.CommitRequest.self, from: Data(body.utf8))
        #expect(throws: SiloError.self) { try Changeset(request.changes).validate() }
    }
}
