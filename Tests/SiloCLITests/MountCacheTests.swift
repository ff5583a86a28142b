import AsyncHTTPClient
import Foundation
import SiloCore
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The machine's content cache under mounts: whole-file copies handed to the kernel (passthrough),
/// blocks kept from a server, and the kernel's rules for opens that pass through.
@Suite(.timeLimit(.minutes(10)), .ownThread) struct MountCacheTests {
    typealias Setup = MountTests.Setup

    struct Status: Decodable {
        struct Counts: Decodable {
            var writable: Bool
            var passthrough: Bool
            var passedThroughOpens: Int
            var servedOpens: Int
            var bytesServed: Int
        }
        var version: Int64
        var changedPaths: Int
        var status: Counts
    }

    static func status(_ setup: Setup, _ root: String) throws -> Status {
        let output = try setup.ok("volume", "status", root, "--json")
        return try JSONDecoder().decode(Status.self, from: Data(output.stdout.utf8))
    }

    /// Reads `count` bytes at `offset` through one open of `path`.
    static func read(_ path: String, offset: Int = 0, count: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0, "open \(path): \(String(cString: strerror(errno)))")
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            try #require(got >= 0)
            if got == 0 { break }
            done += got
        }
        return Array(bytes.prefix(done))
    }

    @Test(arguments: Store.allCases) func aFileReadThroughIsKeptWholeAndLaterOpensPassThrough(_ store: Store) throws {
        let setup = try Setup(store)
        let model = pseudoRandomBytes(count: 20 * 1024 * 1024 + 5, seed: 31)
        _ = try setup.ok("volume", "create", "models")
        _ = try setup.ok("volume", "put", "models", try setup.directory.write("model.bin", model), "/model.bin")

        let (a, rootA) = try setup.mount("models", at: "a", "--read-only")
        defer { MountTests.stop(a) }
        #expect(try Self.read(rootA + "/model.bin", count: model.count + 1) == model)
        let first = try Self.status(setup, rootA)
        #expect(first.status.passthrough)
        #expect(first.status.passedThroughOpens == 0 && first.status.servedOpens == 1)
        #expect(first.status.bytesServed == model.count)

        // Read through once: the next open is handed to the kernel, and no read reaches the mount.
        #expect(try Self.read(rootA + "/model.bin", count: model.count) == model)
        let second = try Self.status(setup, rootA)
        #expect(second.status.passedThroughOpens == 1)
        #expect(second.status.bytesServed == first.status.bytesServed)

        // Another mount on the machine (writable this time) finds the copy at once.
        let (b, rootB) = try setup.mount("models", at: "b")
        defer { MountTests.stop(b) }
        #expect(try Self.read(rootB + "/model.bin", offset: 12_345_678, count: 1 << 20) == Array(model[12_345_678..<(12_345_678 + (1 << 20))]))
        let other = try Self.status(setup, rootB)
        #expect(other.status.passedThroughOpens == 1 && other.status.servedOpens == 0 && other.status.bytesServed == 0)

        // Without passthrough, the same opens are served, from the copy.
        let (c, rootC) = try setup.mount("models", at: "c", "--read-only", "--no-passthrough")
        defer { MountTests.stop(c) }
        #expect(try Self.read(rootC + "/model.bin", count: model.count) == model)
        let served = try Self.status(setup, rootC)
        #expect(!served.status.passthrough && served.status.passedThroughOpens == 0 && served.status.bytesServed == model.count)
    }

    /// The whole-file copies in the cache, by path.
    static func wholeFileCopies(_ setup: Setup) -> [String] {
        let files = setup.directory.path + "/home/cache/files"
        return (FileManager.default.enumerator(atPath: files)?.compactMap { $0 as? String } ?? [])
            .filter { $0.contains("-") }.map { files + "/" + $0 }
    }

    static func damage(_ path: String, at offset: Int) throws {
        chmod(path, 0o600)
        let fd = open(path, O_WRONLY)
        try #require(fd >= 0, "cannot open \(path)")
        defer { close(fd) }
        #expect(pwrite(fd, "garbage", 7, off_t(offset)) == 7)
    }

    /// A whole-file copy damaged on disk never becomes committed data: a copy-up checks what it copied,
    /// drops the copy and takes the verified blocks instead; `silo cache verify` finds and drops one too.
    @Test(arguments: Store.allCases) func aDamagedWholeFileCopyIsNeverCommitted(_ store: Store) throws {
        let setup = try Setup(store)
        let model = pseudoRandomBytes(count: 20 * 1024 * 1024 + 5, seed: 33)
        _ = try setup.ok("volume", "create", "models")
        _ = try setup.ok("volume", "put", "models", try setup.directory.write("model.bin", model), "/model.bin")
        let (a, rootA) = try setup.mount("models", at: "a", "--read-only")
        defer { MountTests.stop(a) }
        #expect(try Self.read(rootA + "/model.bin", count: model.count) == model)
        let copy = try #require(Self.wholeFileCopies(setup).first, "reading the file through made no whole-file copy")
        try Self.damage(copy, at: 9 * 1024 * 1024)

        let (b, rootB) = try setup.mount("models", at: "b")
        defer { MountTests.stop(b) }
        let appended = open(rootB + "/model.bin", O_WRONLY | O_APPEND)
        try #require(appended >= 0, "open for append: \(String(cString: strerror(errno)))")
        #expect(write(appended, "tail", 4) == 4)
        close(appended)
        _ = try setup.ok("volume", "commit", rootB)
        _ = try setup.ok("volume", "get", "models", "/model.bin", setup.directory.file("committed.bin"))
        let committed = try [UInt8](Data(contentsOf: URL(fileURLWithPath: setup.directory.file("committed.bin"))))
        #expect(committed.count == model.count + 4 && committed == model + Array("tail".utf8), "the commit holds damaged bytes")
        // The damaged copy was dropped; the blocks read instead may have made it again, whole.
        if let remade = FileManager.default.contents(atPath: copy) {
            #expect(Array(remade) == model, "the damaged copy was kept")
        }

        // Made again by a read, damaged again: the scrub finds it.
        #expect(try Self.read(rootA + "/model.bin", count: model.count) == model)
        let again = try #require(Self.wholeFileCopies(setup).first)
        try Self.damage(again, at: 100)
        let verify = try setup.silo.run(["cache", "verify"])
        #expect(verify.status == 5, "\(verify.stderr)")
        #expect(verify.stderr.contains(again) || verify.stdout.contains(again))
        #expect(!FileManager.default.fileExists(atPath: again))
        let clean = try setup.silo.run(["cache", "verify"])
        #expect(clean.status == 0 && (clean.stdout + clean.stderr).contains("all intact"), "\(clean.stderr)")
    }

    @Test func blocksFetchedFromAServerAreReadFromTheCacheByTheNextMountAndADamagedOneIsFetchedAgain() async throws {
        let setup = try Setup(.server)
        let server = try #require(setup.server)
        let data = pseudoRandomBytes(count: 3 * BlockLayout.defaultBlockSize, seed: 32)
        _ = try setup.ok("volume", "create", "data")
        _ = try setup.ok("volume", "put", "data", try setup.directory.write("set.bin", data), "/set.bin")
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        func bytesOut() async throws -> Int {
            let response = try await http.execute(HTTPClientRequest(url: server.url + "/metrics"), timeout: .seconds(30))
            let text = String(buffer: try await response.body.collect(upTo: 4 << 20))
            let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("silo_bytes_out ") })
            return try #require(Int(line.split(separator: " ")[1]))
        }
        let head = 1 << 20

        // Mount A reads the first MiB only: its blocks (and those read ahead) are fetched once.
        let (a, rootA) = try setup.mount("data", at: "a", "--read-only")
        defer { MountTests.stop(a) }
        #expect(try Self.read(rootA + "/set.bin", count: head) == Array(data.prefix(head)))
        // A reads ahead to the file's end (three blocks) behind the read: the count is taken once
        // that has arrived, so none of it is counted against B.
        var afterA = try await bytesOut()
        for _ in 0..<300 where afterA < data.count {
            try await Task.sleep(for: .milliseconds(100))
            afterA = try await bytesOut()
        }
        #expect(afterA >= data.count)

        // Mount B reads the same bytes from the machine's cache: the server sends no block.
        let (b, rootB) = try setup.mount("data", at: "b", "--read-only")
        defer { MountTests.stop(b) }
        #expect(try Self.read(rootB + "/set.bin", count: head) == Array(data.prefix(head)))
        let afterB = try await bytesOut()
        #expect(afterB - afterA < head)

        // A damaged cached block is found out on read, dropped, and fetched again.
        let hash = Block(bytes: Array(data.prefix(BlockLayout.defaultBlockSize))).hash.hex
        let cached = setup.directory.path + "/home/cache/blocks/\(hash.prefix(2))/\(hash)"
        let fd = open(cached, O_WRONLY)
        try #require(fd >= 0, "the block is not in the cache at \(cached)")
        #expect(pwrite(fd, "garbage", 7, 4096) == 7)
        close(fd)
        let (c, rootC) = try setup.mount("data", at: "c", "--read-only")
        defer { MountTests.stop(c) }
        #expect(try Self.read(rootC + "/set.bin", count: head) == Array(data.prefix(head)))
        #expect(try await bytesOut() - afterB >= BlockLayout.defaultBlockSize)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: cached))) == Array(data.prefix(BlockLayout.defaultBlockSize)))
    }

    @Test func writesToLocalFilesPassThroughAndStillCommit() throws {
        let setup = try Setup(.embedded)
        _ = try setup.ok("volume", "create", "v")
        let (mount, root) = try setup.mount("v", at: "m")
        defer { MountTests.stop(mount) }
        let bytes = pseudoRandomBytes(count: 5 * 1024 * 1024 + 1, seed: 33)
        try Data(bytes).write(to: URL(fileURLWithPath: root + "/out.bin"))
        #expect(try Self.read(root + "/out.bin", count: bytes.count) == bytes)
        let status = try Self.status(setup, root)
        #expect(status.status.passedThroughOpens >= 2)
        #expect(status.status.bytesServed == 0)
        #expect(status.changedPaths == 1)
        #expect(try setup.ok("volume", "commit", root).stdout.contains("as version 1"))
        let back = setup.directory.file("back.bin")
        _ = try setup.ok("volume", "get", "v", "/out.bin", back)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: back))) == bytes)
    }

    @Test func aFileOpenThroughTheCacheCannotBeOpenedForWritingUntilItsReadersClose() throws {
        let setup = try Setup(.embedded)
        let model = pseudoRandomBytes(count: 9 * 1024 * 1024, seed: 34)
        _ = try setup.ok("volume", "create", "v")
        _ = try setup.ok("volume", "put", "v", try setup.directory.write("model.bin", model), "/model.bin")
        let (mount, root) = try setup.mount("v", at: "m")
        defer { MountTests.stop(mount) }
        let path = root + "/model.bin"
        #expect(try Self.read(path, count: model.count) == model)  // now kept whole

        let reader = open(path, O_RDONLY)
        try #require(reader >= 0)
        #expect(try Self.status(setup, root).status.passedThroughOpens == 1)
        // The kernel holds the cache's copy as this file's backing; a writer needs a copy of its own.
        #expect(open(path, O_WRONLY) == -1 && errno == ETXTBSY)
        close(reader)
        let writer = open(path, O_WRONLY)
        try #require(writer >= 0, "open for writing after the reader closed: \(String(cString: strerror(errno)))")
        #expect(pwrite(writer, "new", 3, 0) == 3)
        close(writer)
        #expect(try Self.read(path, count: 3) == Array("new".utf8))
        #expect(try Self.read(path, offset: 3, count: model.count) == Array(model[3...]))
        _ = try setup.ok("volume", "commit", root)
        let back = setup.directory.file("back.bin")
        _ = try setup.ok("volume", "get", "v", "/model.bin", back)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: back))) == Array("new".utf8) + model[3...])
        // The cache's copy of the old version is unchanged.
        let (other, otherRoot) = try setup.mount("v", at: "old", "--read-only", "--version", "1")
        defer { MountTests.stop(other) }
        #expect(try Self.read(otherRoot + "/model.bin", count: model.count) == model)
    }

    @Test func aReloadGivesNewOpensTheNewContentWhileAnOpenFileKeepsTheOld() throws {
        let setup = try Setup(.embedded)
        let old = pseudoRandomBytes(count: 9 * 1024 * 1024, seed: 35)
        let new = pseudoRandomBytes(count: 9 * 1024 * 1024, seed: 36)
        _ = try setup.ok("volume", "create", "v")
        _ = try setup.ok("volume", "put", "v", try setup.directory.write("old.bin", old), "/model.bin")
        let (mount, root) = try setup.mount("v", at: "m")
        defer { MountTests.stop(mount) }
        #expect(try Self.read(root + "/model.bin", count: old.count) == old)
        let held = open(root + "/model.bin", O_RDONLY)
        try #require(held >= 0)
        defer { close(held) }

        _ = try setup.ok("volume", "put", "v", try setup.directory.write("new.bin", new), "/model.bin", "--force")
        _ = try setup.ok("volume", "reload", root)
        #expect(try Self.read(root + "/model.bin", count: new.count) == new)
        var bytes = [UInt8](repeating: 0, count: 4096)
        #expect(bytes.withUnsafeMutableBytes { pread(held, $0.baseAddress, 4096, 8 * 1024 * 1024) } == 4096)
        #expect(bytes == Array(old[(8 * 1024 * 1024)..<(8 * 1024 * 1024 + 4096)]))
    }
}
