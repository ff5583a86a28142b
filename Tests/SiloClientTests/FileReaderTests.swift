import Foundation
import SiloClient
import SiloCore
import SiloTesting
import Testing

/// The read pipeline: reads at any offset across blocks, with read-ahead and whole-file copies.
@Suite(.timeLimit(.minutes(1)))
struct FileReaderTests {
    /// A file of five blocks and a bit, committed with small blocks so reads cross boundaries.
    static func committedFile(_ fixture: StoreFixture, bytes: [UInt8]) async throws -> Entry {
        let volume = try VolumeName("v")
        _ = try await fixture.service.createVolume(volume)
        let content = try await fixture.service.uploadBlocks(bytes, blockSize: 64 * 1024)
        let path = try VolumePath("f")
        _ = try await fixture.service.commit(
            Changeset([.put(path, FilePut(content: content, size: Int64(bytes.count), mtimeNanoseconds: 0))]), to: volume,
            options: CommitOptions(author: "test")
        )
        return try #require(try await fixture.service.entry(at: path, in: volume, version: nil))
    }

    @Test func readsAtAnyOffsetAgreeWithTheFile() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let bytes = pseudoRandomBytes(count: 5 * 64 * 1024 + 777, seed: 5)
            let entry = try await Self.committedFile(fixture, bytes: bytes)
            let reader = FileReader(service: fixture.service, memoryBlocks: 2, readAhead: 3)
            var random = SystemRandomNumberGenerator()
            for _ in 0..<200 {
                let start = Int.random(in: 0...bytes.count, using: &random)
                let end = min(bytes.count, start + Int.random(in: 0...200_000, using: &random))
                let read = try await reader.read(entry, Int64(start)..<Int64(end))
                #expect(read == Array(bytes[start..<end]), "bytes \(start)..<\(end)")
            }
            // Sequentially in small reads, as the kernel reads: every read-ahead is awaited by a later
            // read, never by itself.
            var whole: [UInt8] = []
            while whole.count < bytes.count {
                whole += try await reader.read(entry, Int64(whole.count)..<Int64(whole.count + 4096))
            }
            #expect(whole == bytes)
        }
    }

    @Test func aFileReadThroughIsKeptWholeInTheCache() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let bytes = pseudoRandomBytes(count: 3 * 64 * 1024 + 10, seed: 6)
            let entry = try await Self.committedFile(fixture, bytes: bytes)
            let cache = try ContentCache(root: fixture.directory.file("cache"), capacity: 1 << 30)
            let reader = FileReader(service: fixture.service, cache: cache, assembleCopies: true)
            #expect(reader.wholeCopy(of: entry) == nil)
            // Out of order: the copy is assembled from whatever blocks the reads fetched.
            for start in [2, 0, 3, 1].map({ Int64($0 * 64 * 1024) }) { _ = try await reader.read(entry, start..<(start + 64 * 1024)) }
            let copy = try #require(reader.wholeCopy(of: entry))
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: copy))) == bytes)
            // The embedded store's blocks are on this disk already: none were copied into the cache.
            #expect(cache.block(entry.content!.blockHashes[0]) == nil)
        }
    }

    @Test func getStreamsInOrderWithSeveralBlocksOnTheirWay() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let bytes = pseudoRandomBytes(count: 7 * 64 * 1024 + 1, seed: 7)
            let entry = try await Self.committedFile(fixture, bytes: bytes)
            var streamed: [UInt8] = []
            var chunks = 0
            try await FileReader(service: fixture.service, memoryBlocks: 0).forEachChunk(of: entry, range: 100..<Int64(bytes.count), depth: 3) {
                streamed += $0
                chunks += 1
            }
            #expect(streamed == Array(bytes[100...]))
            #expect(chunks == 8)
        }
    }
}
