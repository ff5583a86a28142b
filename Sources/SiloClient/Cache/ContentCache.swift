import Foundation
import SiloCore
import SiloStore

#if canImport(Glibc)
import Glibc
#endif

/// The machine's cache of volume content on local disk, shared by every mount and process that uses
/// the same directory: blocks by their SHA-256 (`blocks/ab/abcd…`), and whole files by the key of
/// their content (`files/ab/abcd…`), which mounts hand to the kernel as passthrough backing files.
///
/// Everything in it is immutable and named by what it holds, so processes share it without talking
/// to each other: an entry is written under a temporary name and renamed into place. Blocks are
/// verified on every read, and one that fails is removed (the caller fetches it again). Whole files
/// are assembled only from verified blocks; the kernel reads them without Silo, so they are checked
/// again before they become the source of a commit (``matches(_:hashes:size:blockSize:)``) and by
/// ``scrub()`` (`silo cache verify`, and mounts once a day). The cache stays under ``capacity`` bytes by evicting the
/// entries used least recently (a use refreshes an entry's modification time).
public final class ContentCache: @unchecked Sendable {
    public let root: String
    /// Bytes the cache may hold before it evicts.
    public let capacity: Int64

    private let lock = NSLock()
    /// Bytes added since the last sweep: a sweep (a walk of the cache) runs once a tenth of the
    /// capacity has been added, not on every insert.
    private var addedSinceSweep: Int64
    private var sweeping = false

    public init(root: String, capacity: Int64) throws {
        self.root = root
        self.capacity = max(capacity, 1)
        try FileIO.makePrivateDirectory(root)
        for directory in ["blocks", "files", "tmp"] { try FileIO.makeDirectories("\(root)/\(directory)") }
        // Sweep at the first insert: other processes may have filled the cache meanwhile.
        addedSinceSweep = self.capacity
        removeStaleTemporaries()
    }

    /// The default size: a tenth of the disk that holds `root`, at least 1 GiB.
    public static func defaultCapacity(for root: String) -> Int64 {
        var figures = statvfs()
        var probe = root
        while statvfs(probe, &figures) != 0, let slash = probe.lastIndex(of: "/"), slash != probe.startIndex {
            probe = String(probe[..<slash])
        }
        let disk = Int64(figures.f_blocks) * Int64(figures.f_frsize)
        return max(1 << 30, disk / 10)
    }

    /// The key whole-file copies are stored under: the SHA-256 of the file's size, block size and
    /// block hashes, so two volumes (or versions) holding the same bytes share one copy, followed by
    /// `-BLOCKSIZE`. A copy carries its own hash that way: hashing its bytes block by block and then
    /// the list gives its name back, which is how a copy is verified with nothing but the copy.
    public static func key(of content: [BlockHash], size: Int64, blockSize: Int) -> String {
        let hasher = SHA256Hasher()
        withUnsafeBytes(of: size.littleEndian) { hasher.update($0) }
        withUnsafeBytes(of: Int64(blockSize).littleEndian) { hasher.update($0) }
        for hash in content { hasher.update(hash.bytes) }
        return hasher.finalize().hex + "-\(blockSize)"
    }

    /// Whether the `size` bytes readable from `fd` hash, block by block, to `hashes`.
    public static func matches(_ fd: Int32, hashes: [BlockHash], size: Int64, blockSize: Int) -> Bool {
        guard BlockLayout(blockSize: blockSize).blockCount(forSize: size) == hashes.count else { return false }
        return (try? hashBlocks(fd, size: size, blockSize: blockSize)) == hashes
    }

    /// The SHA-256 of each `blockSize` piece of the first `size` bytes of `fd`.
    static func hashBlocks(_ fd: Int32, size: Int64, blockSize: Int) throws -> [BlockHash] {
        var buffer = [UInt8](repeating: 0, count: blockSize)
        let hasher = SHA256Hasher()
        var hashes: [BlockHash] = []
        var offset: Int64 = 0
        while offset < size {
            let length = Int(min(Int64(blockSize), size - offset))
            let got = try buffer.withUnsafeMutableBytes { raw in
                try FileIO.readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: raw[..<length]), at: offset, path: "a cached copy")
            }
            guard got == length else { throw SiloError(.io, "a cached copy is shorter than its size says") }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[..<length])) }
            hashes.append(hasher.finalize())
            offset += Int64(length)
        }
        return hashes
    }

    // MARK: Blocks

    func blockPath(_ hash: BlockHash) -> String {
        let hex = hash.hex
        return "\(root)/blocks/\(hex.prefix(2))/\(hex)"
    }

    /// The block from the cache, verified, or nil if it is not here. A block whose bytes no longer
    /// match its hash is removed.
    public func block(_ hash: BlockHash) -> Block? {
        let path = blockPath(hash)
        guard let bytes = try? FileIO.readWholeFile(path) else { return nil }
        guard let block = try? Block(bytes: bytes, expected: hash) else {
            unlink(path)
            return nil
        }
        touch(path)
        return block
    }

    /// Keeps a copy of `block`; failures (a full disk, say) only mean it is not cached.
    public func store(_ block: Block) {
        let path = blockPath(block.hash)
        guard access(path, F_OK) != 0 else { return }
        let written = block.bytes.withUnsafeBytes { bytes in
            place(at: path) { fd, temporary in try FileIO.writeAll(fd, bytes, path: temporary) }
        }
        if written { added(Int64(block.bytes.count)) }
    }

    // MARK: Whole files

    func filePath(_ key: String) -> String { "\(root)/files/\(key.prefix(2))/\(key)" }

    /// The whole-file copy stored under `key`, if it is here and `size` bytes long.
    public func wholeFile(_ key: String, size: Int64) -> String? {
        let path = filePath(key)
        var info = stat()
        guard stat(path, &info) == 0, Int64(info.st_size) == size else { return nil }
        touch(path)
        return path
    }

    /// Starts assembling the whole-file copy of a file of `blockCount` blocks, to be stored under
    /// `key` once every block has been added.
    public func assembler(key: String, size: Int64, blockSize: Int, blockCount: Int) -> WholeFileAssembler? {
        let temporary = "\(root)/tmp/\(key).\(getpid()).\(UInt64.random(in: 0...UInt64.max))"
        let fd = Glibc.open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o400)
        guard fd >= 0 else { return nil }
        guard ftruncate(fd, off_t(size)) == 0 else {
            Glibc.close(fd)
            unlink(temporary)
            return nil
        }
        return WholeFileAssembler(cache: self, key: key, fd: fd, temporary: temporary, blockSize: blockSize, blockCount: blockCount)
    }

    fileprivate func finish(_ assembler: WholeFileAssembler) -> String? {
        let path = filePath(assembler.key)
        guard fdatasync(assembler.fd) == 0, (try? FileIO.makeDirectories(String(path[..<path.lastIndex(of: "/")!]))) != nil,
            rename(assembler.temporary, path) == 0
        else { return nil }
        var info = stat()
        if fstat(assembler.fd, &info) == 0 { added(Int64(info.st_size)) }
        return path
    }

    /// Removes a whole-file copy found damaged; the next reader assembles it again from blocks.
    public func dropWholeFile(_ key: String) {
        unlink(filePath(key))
    }

    // MARK: Verification

    /// What a pass over the cache found.
    public struct ScrubReport: Sendable, Equatable {
        public var blocks = 0
        public var files = 0
        public var bytes: Int64 = 0
        /// Entries whose bytes no longer match their names, removed.
        public var dropped: [String] = []
        /// Whole-file copies named as older versions of Silo named them, removed.
        public var outdated = 0
    }

    /// Reads every entry and checks it against its name: a block against its SHA-256, a whole-file
    /// copy against its key. Damaged entries are removed (readers fetch or assemble them again).
    public func scrub() -> ScrubReport {
        var report = ScrubReport()
        for (kind, path) in entries() {
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { continue }
            defer { Glibc.close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0 else { continue }
            let name = String(path[path.index(after: path.lastIndex(of: "/")!)...])
            let good: Bool
            if kind == "blocks" {
                report.blocks += 1
                good = (try? FileIO.readWholeFile(path)).map { SHA256Hasher.hash($0).hex == name } ?? false
            } else if !name.contains("-") {
                // Named the way copies were before they carried their block size: not checkable, and
                // never looked up any more. Removed quietly.
                unlink(path)
                report.outdated += 1
                continue
            } else {
                report.files += 1
                good = Self.wholeFileMatchesName(fd, size: Int64(info.st_size), name: name)
            }
            report.bytes += Int64(info.st_size)
            if !good {
                unlink(path)
                report.dropped.append(path)
            }
        }
        return report
    }

    /// Whether a whole-file copy named `HEX-BLOCKSIZE` holds the bytes its name says.
    static func wholeFileMatchesName(_ fd: Int32, size: Int64, name: String) -> Bool {
        guard let dash = name.lastIndex(of: "-"), let blockSize = Int(name[name.index(after: dash)...]),
            BlockLayout.allowedBlockSizes.contains(blockSize),
            let hashes = try? hashBlocks(fd, size: size, blockSize: blockSize)
        else { return false }
        return key(of: hashes, size: size, blockSize: blockSize) == name
    }

    /// Every block and whole-file copy in the cache, with its kind.
    private func entries() -> [(kind: String, path: String)] {
        var found: [(String, String)] = []
        for kind in ["blocks", "files"] {
            for shard in (try? FileManager.default.contentsOfDirectory(atPath: "\(root)/\(kind)")) ?? [] {
                let directory = "\(root)/\(kind)/\(shard)"
                for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                    found.append((kind, directory + "/" + name))
                }
            }
        }
        return found
    }

    /// Scrubs the cache if no process using it has done so for `interval` seconds; the stamp file's
    /// time tells, so the mounts sharing a cache take turns instead of all reading it.
    public func scrubIfDue(every interval: Int) -> ScrubReport? {
        let stamp = root + "/scrubbed"
        var info = stat()
        // The stamp's time comes from the file system's fine clock, which may be ahead of `time()`'s
        // coarse one; compare against the fine clock, and an interval of 0 is always due.
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        if interval > 0, stat(stamp, &info) == 0, now.tv_sec - info.st_mtim.tv_sec < interval { return nil }
        let fd = Glibc.open(stamp, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        // One process at a time; the others skip this round.
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return nil }
        _ = futimens(fd, nil)
        return scrub()
    }

    // MARK: Housekeeping

    /// Writes a new entry with `body` under a temporary name and renames it to `path`.
    private func place(at path: String, _ body: (Int32, String) throws -> Void) -> Bool {
        let temporary = "\(root)/tmp/\(path.split(separator: "/").last!).\(getpid()).\(UInt64.random(in: 0...UInt64.max))"
        guard let fd = try? FileIO.open(temporary, flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o400) else { return false }
        defer { Glibc.close(fd) }
        do {
            try body(fd, temporary)
            try FileIO.makeDirectories(String(path[..<path.lastIndex(of: "/")!]))
            guard rename(temporary, path) == 0 else { throw FileIO.error(errno, "could not rename \(temporary)") }
            return true
        } catch {
            unlink(temporary)
            return false
        }
    }

    /// Marks an entry used now, for eviction order.
    private func touch(_ path: String) {
        _ = utimensat(AT_FDCWD, path, nil, 0)
    }

    private func added(_ bytes: Int64) {
        let due = lock.withLock {
            addedSinceSweep += bytes
            guard addedSinceSweep >= capacity / 10, !sweeping else { return false }
            sweeping = true
            addedSinceSweep = 0
            return true
        }
        guard due else { return }
        sweep()
        lock.withLock { sweeping = false }
    }

    /// Evicts the least recently used entries until the cache holds at most nine tenths of its
    /// capacity. A file open elsewhere (a passthrough backing file) stays readable after its
    /// removal; its space returns when it is closed.
    public func sweep() {
        var found: [(path: String, size: Int64, used: Int)] = []
        var total: Int64 = 0
        for (_, path) in entries() {
            var info = stat()
            guard stat(path, &info) == 0 else { continue }
            let size = Int64(info.st_blocks) * 512
            found.append((path, size, info.st_mtim.tv_sec * 1_000_000_000 + info.st_mtim.tv_nsec))
            total += size
        }
        guard total > capacity else { return }
        let target = capacity / 10 * 9
        for entry in found.sorted(by: { $0.used < $1.used }) {
            guard total > target else { break }
            if unlink(entry.path) == 0 { total -= entry.size }
        }
    }

    /// Removes temporary files left by processes that died while writing them.
    private func removeStaleTemporaries() {
        let now = time(nil)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "\(root)/tmp")) ?? [] {
            var info = stat()
            let path = "\(root)/tmp/\(name)"
            if stat(path, &info) == 0, now - info.st_mtim.tv_sec > 3600 { unlink(path) }
        }
    }
}

/// A whole-file copy being assembled from a file's blocks as they are read, in any order and from any
/// thread; stored in the cache when the last one arrives.
public final class WholeFileAssembler: @unchecked Sendable {
    let cache: ContentCache
    public let key: String
    fileprivate let fd: Int32
    fileprivate let temporary: String
    private let blockSize: Int
    private let lock = NSLock()
    private var missing: Set<Int>
    private var writing = 0
    private var stored: String?
    /// The stored copy, once every block is in.
    public var completed: String? { lock.withLock { stored } }

    fileprivate init(cache: ContentCache, key: String, fd: Int32, temporary: String, blockSize: Int, blockCount: Int) {
        self.cache = cache
        self.key = key
        self.fd = fd
        self.temporary = temporary
        self.blockSize = blockSize
        self.missing = Set(0..<blockCount)
    }

    deinit {
        Glibc.close(fd)
        if stored == nil { unlink(temporary) }
    }

    /// Writes block `index` (verified bytes) into the copy unless it is there already; returns the
    /// stored copy's path once every block is in.
    @discardableResult
    public func add(_ index: Int, _ bytes: [UInt8]) -> String? {
        let first = lock.withLock {
            guard stored == nil, missing.remove(index) != nil else { return false }
            writing += 1
            return true
        }
        guard first else { return completed }
        let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(index) * off_t(blockSize)) }
        return lock.withLock {
            writing -= 1
            if written != bytes.count { missing.insert(index) }
            // Stored by whichever write ends last, once no block is missing or still being written.
            if missing.isEmpty && writing == 0 && stored == nil { stored = cache.finish(self) }
            return stored
        }
    }
}
