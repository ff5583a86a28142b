#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOPosix
import SiloCore

/// Blocks as files under a directory: `ROOT/NAMESPACE/ab/abcdef…` (the block's hex SHA-256).
///
/// A block is written to a temporary file in `ROOT/tmp`, fsynced, then renamed into place (and its
/// directory fsynced), so a block file is either whole or absent, whatever kills the process; several
/// processes may write the same block at once. Reads verify the hash, so damage on disk surfaces as
/// ``SiloError/Code/corruptBlock``, never as wrong bytes.
///
/// The file calls block. A CLI process calls them inline; a server passes a thread pool, so a slow disk
/// stalls only the pool's threads, never the event loops serving other requests.
public struct LocalBlobStore: BlobStore {
    public let root: String
    let threadPool: NIOThreadPool?

    public init(root: String, threadPool: NIOThreadPool? = nil) throws {
        self.root = root
        self.threadPool = threadPool
        try FileIO.makeDirectories(root + "/tmp")
    }

    private func run<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        guard let threadPool else { return try body() }
        return try await threadPool.runIfActive(body)
    }

    public func path(of hash: BlockHash, namespace: String) -> String {
        let hex = hash.hex
        return "\(root)/\(namespace)/\(hex.prefix(2))/\(hex)"
    }

    public func length(of hash: BlockHash, namespace: String) async throws -> Int? {
        try await run { lengthNow(hash, namespace: namespace) }
    }

    /// One trip to the I/O thread for all of them: a `stat` each.
    public func missing(_ hashes: [BlockHash], namespace: String) async throws -> [BlockHash] {
        try await run { hashes.filter { lengthNow($0, namespace: namespace) == nil } }
    }

    public func put(_ block: Block, namespace: String, replacing: Bool) async throws {
        try await run { try putNow(block, namespace: namespace, replacing: replacing) }
    }

    public func get(_ hash: BlockHash, namespace: String) async throws -> Block {
        try await run { try getNow(hash, namespace: namespace) }
    }

    public func delete(_ hash: BlockHash, namespace: String) async throws {
        try await run { try deleteNow(hash, namespace: namespace) }
    }

    private func lengthNow(_ hash: BlockHash, namespace: String) -> Int? {
        var info = stat()
        guard stat(path(of: hash, namespace: namespace), &info) == 0 else { return nil }
        return Int(info.st_size)
    }

    private func putNow(_ block: Block, namespace: String, replacing: Bool) throws {
        let final = path(of: block.hash, namespace: namespace)
        if !replacing, lengthNow(block.hash, namespace: namespace) != nil { return }
        let directory = String(final[..<final.lastIndex(of: "/")!])
        try FileIO.makeDirectoriesDurably(directory)
        let temporary = "\(root)/tmp/\(block.hash.hex).\(getpid()).\(UInt64.random(in: 0...UInt64.max))"
        do {
            let fd = try FileIO.open(temporary, flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o400)
            defer { close(fd) }
            try block.bytes.withUnsafeBytes { try FileIO.writeAll(fd, $0, path: temporary) }
            try FileIO.fsync(fd, path: temporary)
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, final) == 0 else {
            let code = errno
            unlink(temporary)
            throw FileIO.error(code, "could not store block \(block.hash.hex) at \(final)")
        }
        try FileIO.fsyncDirectory(directory)
    }

    private func getNow(_ hash: BlockHash, namespace: String) throws -> Block {
        let file = path(of: hash, namespace: namespace)
        let bytes: [UInt8]
        do {
            bytes = try FileIO.readWholeFile(file)
        } catch let error as SiloError where error.underlyingErrno == ENOENT {
            throw SiloError(.missingBlock, "block \(hash.hex) is missing from \(root); the store has lost data it was given")
        }
        do {
            return try Block(bytes: bytes, expected: hash)
        } catch {
            throw SiloError(
                .corruptBlock,
                "block \(hash.hex) at \(file) is corrupt (its bytes no longer match their hash); the file using it cannot be read",
            )
        }
    }

    private func deleteNow(_ hash: BlockHash, namespace: String) throws {
        let file = path(of: hash, namespace: namespace)
        if unlink(file) != 0 && errno != ENOENT {
            throw FileIO.error(errno, "could not remove block \(file)")
        }
    }

    /// Removes temporary files left by processes that died while writing a block.
    public func removeStaleTemporaries(olderThanSeconds age: Int = 3600) {
        guard let dir = opendir(root + "/tmp") else { return }
        defer { closedir(dir) }
        let now = time(nil)
        while let item = readdir(dir) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name == "." || name == ".." { continue }
            var info = stat()
            let file = root + "/tmp/" + name
            if stat(file, &info) == 0, now - info.st_mtim.tv_sec > age { unlink(file) }
        }
    }
}
