import Foundation
import SiloClient
import SiloCore
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.timeLimit(.minutes(5))) struct ContentCacheTests {
    @Test func blocksAreVerifiedOnReadAndADamagedOneIsDropped() throws {
        let directory = try TemporaryDirectory("silo-cache")
        defer { directory.remove() }
        let cache = try ContentCache(root: directory.path, capacity: 1 << 30)
        let block = Block(bytes: pseudoRandomBytes(count: 100_000, seed: 1))
        #expect(cache.block(block.hash) == nil)
        cache.store(block)
        #expect(cache.block(block.hash)?.bytes == block.bytes)

        let hex = block.hash.hex
        let file = directory.path + "/blocks/\(hex.prefix(2))/\(hex)"
        var damaged = block.bytes
        damaged[500] ^= 0xFF
        try Data(damaged).write(to: URL(fileURLWithPath: file))
        #expect(cache.block(block.hash) == nil)
        #expect(!FileManager.default.fileExists(atPath: file))
    }

    @Test func theCacheIsPrivateToItsOwner() throws {
        let directory = try TemporaryDirectory("silo-cache")
        defer { directory.remove() }
        let root = directory.path + "/cache"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let cache = try ContentCache(root: root, capacity: 1 << 30)
        let block = Block(bytes: pseudoRandomBytes(count: 1000, seed: 9))
        cache.store(block)
        var info = stat()
        #expect(stat(root, &info) == 0 && info.st_mode & 0o777 == 0o700)
        let file = root + "/blocks/\(block.hash.hex.prefix(2))/\(block.hash.hex)"
        #expect(stat(file, &info) == 0 && info.st_mode & 0o077 == 0)
    }

    /// A whole-file copy carries its hash in its name: a scrub checks it with nothing else, and drops
    /// a damaged copy (or block) while keeping intact ones.
    @Test func aScrubDropsDamagedEntriesAndKeepsIntactOnes() throws {
        let directory = try TemporaryDirectory("silo-cache")
        defer { directory.remove() }
        let cache = try ContentCache(root: directory.path, capacity: 1 << 30)
        let blockSize = 4096
        func store(_ bytes: [UInt8]) throws -> (path: String, hashes: [BlockHash]) {
            let blocks = stride(from: 0, to: bytes.count, by: blockSize).map { Block(bytes: Array(bytes[$0..<min(bytes.count, $0 + blockSize)])) }
            let key = ContentCache.key(of: blocks.map(\.hash), size: Int64(bytes.count), blockSize: blockSize)
            let assembler = try #require(cache.assembler(key: key, size: Int64(bytes.count), blockSize: blockSize, blockCount: blocks.count))
            for (index, block) in blocks.enumerated() { assembler.add(index, block.bytes) }
            return (try #require(cache.wholeFile(key, size: Int64(bytes.count))), blocks.map(\.hash))
        }
        let intact = try store(pseudoRandomBytes(count: 3 * blockSize + 5, seed: 40))
        let damaged = try store(pseudoRandomBytes(count: 2 * blockSize + 9, seed: 41))
        let block = Block(bytes: pseudoRandomBytes(count: 1000, seed: 42))
        cache.store(block)
        let badBlock = Block(bytes: pseudoRandomBytes(count: 1000, seed: 43))
        cache.store(badBlock)

        let first = cache.scrub()
        #expect(first.blocks == 2 && first.files == 2 && first.dropped.isEmpty)
        #expect(first.bytes == Int64(3 * blockSize + 5 + 2 * blockSize + 9 + 2000))
        for path in [damaged.path, directory.path + "/blocks/\(badBlock.hash.hex.prefix(2))/\(badBlock.hash.hex)"] {
            chmod(path, 0o600)
            let fd = open(path, O_WRONLY)
            #expect(pwrite(fd, "x", 1, 700) == 1)
            close(fd)
        }
        let fd = open(damaged.path, O_RDONLY)
        #expect(!ContentCache.matches(fd, hashes: damaged.hashes, size: Int64(2 * blockSize + 9), blockSize: blockSize))
        close(fd)
        let good = open(intact.path, O_RDONLY)
        #expect(ContentCache.matches(good, hashes: intact.hashes, size: Int64(3 * blockSize + 5), blockSize: blockSize))
        close(good)

        let report = cache.scrub()
        #expect(Set(report.dropped) == [damaged.path, directory.path + "/blocks/\(badBlock.hash.hex.prefix(2))/\(badBlock.hash.hex)"])
        #expect(FileManager.default.fileExists(atPath: intact.path))
        #expect(cache.block(block.hash) != nil)
        #expect(cache.scrub().dropped.isEmpty)
    }

    /// The schedule mounts follow: a scrub runs when none ran within the interval, and its stamp
    /// makes the others (every mount sharing the cache) skip until the interval has passed.
    @Test func aScheduledScrubRunsOncePerInterval() throws {
        let directory = try TemporaryDirectory("silo-cache")
        defer { directory.remove() }
        let cache = try ContentCache(root: directory.path, capacity: 1 << 30)
        let block = Block(bytes: pseudoRandomBytes(count: 1000, seed: 44))
        cache.store(block)
        #expect(cache.scrubIfDue(every: 3600)?.blocks == 1)
        #expect(cache.scrubIfDue(every: 3600) == nil)
        let path = directory.path + "/blocks/\(block.hash.hex.prefix(2))/\(block.hash.hex)"
        chmod(path, 0o600)
        let fd = open(path, O_WRONLY)
        #expect(pwrite(fd, "x", 1, 10) == 1)
        close(fd)
        // Due again (an interval of 0 has always passed): the damage is found and dropped.
        #expect(cache.scrubIfDue(every: 0)?.dropped == [path])
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aWholeFileIsStoredOnceEveryBlockIsInWhateverTheOrder() throws {
        let directory = try TemporaryDirectory("silo-cache")
        defer { directory.remove() }
        let cache = try ContentCache(root: directory.path, capacity: 1 << 30)
        let blockSize = 4096
        let bytes = pseudoRandomBytes(count: 5 * blockSize + 17, seed: 2)
        let blocks = stride(from: 0, to: bytes.count, by: blockSize).map { Block(bytes: Array(bytes[$0..<min(bytes.count, $0 + blockSize)])) }
        let key = ContentCache.key(of: blocks.map(\.hash), size: Int64(bytes.count), blockSize: blockSize)
        #expect(key != ContentCache.key(of: blocks.map(\.hash), size: Int64(bytes.count), blockSize: blockSize * 2))

        let assembler = try #require(cache.assembler(key: key, size: Int64(bytes.count), blockSize: blockSize, blockCount: blocks.count))
        for index in [3, 0, 5, 1, 0, 4] {
            #expect(assembler.add(index, blocks[index].bytes) == nil)
            #expect(cache.wholeFile(key, size: Int64(bytes.count)) == nil)
        }
        let stored = try #require(assembler.add(2, blocks[2].bytes))
        #expect(cache.wholeFile(key, size: Int64(bytes.count)) == stored)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: stored))) == bytes)
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/tmp").isEmpty)
    }

    @Test func sweepingEvictsTheLeastRecentlyUsedEntriesFirst() throws {
        let directory = try TemporaryDirectory("silo-cache")
        defer { directory.remove() }
        let size = 64 * 1024
        // One process fills the cache; another, allowed five blocks' worth, sweeps it.
        let filler = try ContentCache(root: directory.path, capacity: 1 << 30)
        let cache = try ContentCache(root: directory.path, capacity: Int64(size) * 5)
        let blocks = (0..<8).map { Block(bytes: pseudoRandomBytes(count: size, seed: UInt64(10 + $0))) }
        for (index, block) in blocks.enumerated() {
            filler.store(block)
            // Each stored block's use is set to a distinct time, oldest first.
            let hex = block.hash.hex
            let time = timespec(tv_sec: 1_000_000 + index, tv_nsec: 0)
            _ = utimensat(AT_FDCWD, directory.path + "/blocks/\(hex.prefix(2))/\(hex)", [time, time], 0)
        }
        // Reading block 0 makes it the most recently used.
        #expect(cache.block(blocks[0].hash) != nil)
        cache.sweep()
        let kept = blocks.indices.filter { index in
            let hex = blocks[index].hash.hex
            return FileManager.default.fileExists(atPath: directory.path + "/blocks/\(hex.prefix(2))/\(hex)")
        }
        // Nine tenths of five blocks' room holds four: block 0 and the three used last.
        #expect(kept == [0, 5, 6, 7])
    }
}
