import Foundation
import SiloFUSE
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A fixed tree in memory, served read-only: the protocol layer alone, with no Silo semantics.
final class MemoryTree: FUSEFileSystem, @unchecked Sendable {
    struct Node {
        var name: String
        var parent: UInt64
        var mode: UInt32
        var bytes: [UInt8] = []
        var target: String?
        var children: [UInt64] = []
    }

    private let lock = NSLock()
    private var nodes: [UInt64: Node] = [1: Node(name: "", parent: 1, mode: S_IFDIR | 0o755)]
    private var lookups: [UInt64: UInt64] = [:]
    /// Local files holding some files' bytes, offered to the kernel as passthrough backing files.
    private var backing: [UInt64: String] = [:]
    private(set) var opened = 0
    private(set) var reads = 0
    /// Lookups answered (each one the kernel then holds).
    private(set) var lookupsAnswered = 0

    /// Offers `file` as the backing file of `node`'s opens (nil: none).
    func back(_ node: UInt64, with file: String?) {
        lock.withLock { backing[node] = file }
    }

    /// Adds a file, directory (bytes nil, target nil) or symlink (target) under `parent`.
    @discardableResult
    func add(_ name: String, in parent: UInt64 = 1, bytes: [UInt8]? = nil, target: String? = nil) -> UInt64 {
        lock.withLock {
            let node = UInt64(nodes.count + 1)
            let mode = target != nil ? S_IFLNK | 0o777 : bytes != nil ? S_IFREG | 0o644 : S_IFDIR | 0o755
            nodes[node] = Node(name: name, parent: parent, mode: mode, bytes: bytes ?? [], target: target)
            nodes[parent]!.children.append(node)
            return node
        }
    }

    var outstandingLookups: UInt64 { lock.withLock { lookups.values.reduce(0, +) } }

    private func node(_ id: UInt64) throws -> Node {
        guard let node = lock.withLock({ nodes[id] }) else { throw FUSEError.notFound }
        return node
    }

    func lookup(parent: UInt64, name: String) throws -> FUSEEntry {
        let directory = try node(parent)
        guard directory.mode & S_IFMT == S_IFDIR else { throw FUSEError.notADirectory }
        for child in directory.children where try node(child).name == name {
            lock.withLock {
                lookups[child, default: 0] += 1
                lookupsAnswered += 1
            }
            return FUSEEntry(attributes: try attributes(of: child), entryTimeout: 60, attributeTimeout: 60)
        }
        throw FUSEError.notFound
    }

    func forget(node: UInt64, lookups count: UInt64) {
        lock.withLock { lookups[node, default: 0] -= count }
    }

    func attributes(of id: UInt64) throws -> FUSEAttributes {
        let node = try node(id)
        let size = node.target.map { UInt64($0.utf8.count) } ?? UInt64(node.bytes.count)
        return FUSEAttributes(node: id, size: size, mode: node.mode, links: node.mode & S_IFMT == S_IFDIR ? 2 : 1, mtimeNanoseconds: 1_700_000_000_500_000_000)
    }

    func readLink(_ id: UInt64) throws -> String {
        guard let target = try node(id).target else { throw FUSEError(EINVAL) }
        return target
    }

    func listDirectory(_ id: UInt64) throws -> [FUSEDirectoryEntry] {
        let directory = try node(id)
        guard directory.mode & S_IFMT == S_IFDIR else { throw FUSEError.notADirectory }
        var entries = [
            FUSEDirectoryEntry(node: id, name: ".", type: S_IFDIR), FUSEDirectoryEntry(node: directory.parent, name: "..", type: S_IFDIR),
        ]
        for child in directory.children {
            let node = try node(child)
            entries.append(FUSEDirectoryEntry(node: child, name: node.name, type: node.mode & S_IFMT))
        }
        return entries
    }

    func open(_ id: UInt64, flags: Int32) throws -> FUSEOpened {
        guard try node(id).mode & S_IFMT == S_IFREG else { throw FUSEError.isADirectory }
        guard flags & O_ACCMODE == O_RDONLY else { throw FUSEError.readOnly }
        let file = lock.withLock {
            opened += 1
            return backing[id]
        }
        return FUSEOpened(handle: id * 10, keepCache: true, backingFile: file.map { Glibc.open($0, O_RDONLY | O_CLOEXEC) })
    }

    func read(_ id: UInt64, handle: UInt64, offset: UInt64, size: Int) throws -> [UInt8] {
        guard handle == id * 10 else { throw FUSEError(EBADF) }
        lock.withLock { reads += 1 }
        let bytes = try node(id).bytes
        guard offset < UInt64(bytes.count) else { return [] }
        return Array(bytes[Int(offset)..<min(bytes.count, Int(offset) + size)])
    }

    func statistics() throws -> FUSEStatistics {
        FUSEStatistics(blockSize: 4096, blocks: 1000, freeBlocks: 250, files: UInt64(nodes.count), freeFiles: 1_000_000)
    }
}

/// A real mount through /dev/fuse (root, as CI runs), read with ordinary system calls.
@Suite(.serialized, .timeLimit(.minutes(5)), .ownThread) struct FUSESessionTests {
    func withMount(_ tree: any FUSEFileSystem, options: FUSESession.Options = .init(), _ body: (String) throws -> Void) throws {
        try withSession(tree, options: options) { session in try body(session.mountPoint) }
    }

    func withSession(_ tree: any FUSEFileSystem, options: FUSESession.Options = .init(), _ body: (FUSESession) throws -> Void) throws {
        let directory = try TemporaryDirectory("silo-fuse")
        defer { directory.remove() }
        let mountPoint = directory.file("mnt")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let session = FUSESession(fileSystem: tree, mountPoint: mountPoint, options: options)
        try session.mount()
        try session.start(threads: 2)
        defer {
            session.unmount()
            // A mount left behind would leak into every later test: it fails this one.
            let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
            #expect(!mounts.contains(" \(session.mountPoint) "), "\(session.mountPoint) is still mounted")
        }
        try body(session)
    }

    /// A tree with one 3 MiB file whose bytes are also in a local file offered as its backing file.
    func backedTree(in directory: TemporaryDirectory) throws -> (MemoryTree, [UInt8], node: UInt64) {
        let bytes = pseudoRandomBytes(count: 3 * 1024 * 1024 + 11, seed: 21)
        let tree = MemoryTree()
        let node = tree.add("model.bin", bytes: bytes)
        let local = directory.file("model.copy")
        try Data(bytes).write(to: URL(fileURLWithPath: local))
        tree.back(node, with: local)
        return (tree, bytes, node)
    }

    @Test func opensWithABackingFilePassThroughAndNoReadReachesTheFileSystem() throws {
        let directory = try TemporaryDirectory("silo-fuse-backing")
        defer { directory.remove() }
        let (tree, bytes, _) = try backedTree(in: directory)
        try withSession(tree) { session in
            let path = session.mountPoint + "/model.bin"
            // Two opens at once share the node's backing file; both read the whole file.
            let first = Glibc.open(path, O_RDONLY)
            let second = Glibc.open(path, O_RDONLY)
            #expect(first >= 0 && second >= 0)
            #expect(session.passthroughEnabled)
            #expect(session.passthroughOpens == 2)
            for fd in [first, second] {
                var read = [UInt8](repeating: 0, count: bytes.count + 10)
                let count = read.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
                #expect(count == bytes.count)
                #expect(Array(read.prefix(max(0, count))) == bytes)
                close(fd)
            }
            #expect(tree.reads == 0)
            // The file system's own answers still hold: stat comes from it, not from the backing file.
            var info = stat()
            #expect(stat(path, &info) == 0 && info.st_size == bytes.count)
        }
    }

    @Test func aReadOnlyOpenWithoutABackingFileSharesTheOneItsNodePassesThroughTo() throws {
        let directory = try TemporaryDirectory("silo-fuse-shared-backing")
        defer { directory.remove() }
        let (tree, bytes, node) = try backedTree(in: directory)
        try withSession(tree) { session in
            let path = session.mountPoint + "/model.bin"
            let first = Glibc.open(path, O_RDONLY)
            #expect(first >= 0)
            defer { close(first) }
            // The copy went (evicted, say) while the first open holds it: a second reader still opens.
            tree.back(node, with: nil)
            let second = Glibc.open(path, O_RDONLY)
            #expect(second >= 0, "\(String(cString: strerror(errno)))")
            defer { close(second) }
            var read = [UInt8](repeating: 0, count: 4096)
            #expect(read.withUnsafeMutableBytes { pread(second, $0.baseAddress, 4096, 1_000_000) } == 4096)
            #expect(read == Array(bytes[1_000_000..<1_004_096]))
            #expect(session.passthroughOpens == 2 && tree.reads == 0)
        }
    }

    @Test func withoutPassthroughTheSameOpensAreServed() throws {
        let directory = try TemporaryDirectory("silo-fuse-served")
        defer { directory.remove() }
        let (tree, bytes, _) = try backedTree(in: directory)
        var options = FUSESession.Options()
        options.passthrough = false
        try withSession(tree, options: options) { session in
            let read = try Data(contentsOf: URL(fileURLWithPath: session.mountPoint + "/model.bin"))
            #expect(Array(read) == bytes)
            #expect(!session.passthroughEnabled)
            #expect(session.passthroughOpens == 0)
            #expect(tree.reads > 0)
        }
    }

    @Test func aTreeReadsBackThroughTheKernel() throws {
        let tree = MemoryTree()
        let models = tree.add("models")
        tree.add("hello.txt", in: models, bytes: Array("hello".utf8))
        let big = pseudoRandomBytes(count: 3 * 1024 * 1024 + 5, seed: 3)
        tree.add("weights.bin", in: models, bytes: big)
        tree.add("latest", target: "models/weights.bin")
        for index in 0..<300 { tree.add("f\(index)", bytes: Array("\(index)".utf8)) }

        try withMount(tree) { (root: String) throws in
            let names = try FileManager.default.contentsOfDirectory(atPath: root)
            #expect(Set(names) == Set(["models", "latest"] + (0..<300).map { "f\($0)" }))
            #expect(try String(contentsOfFile: root + "/models/hello.txt", encoding: .utf8) == "hello")
            #expect(FileManager.default.contents(atPath: root + "/models/weights.bin") == Data(big))
            #expect(FileManager.default.contents(atPath: root + "/latest") == Data(big))
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/latest") == "models/weights.bin")

            var info = stat()
            #expect(stat(root + "/models/weights.bin", &info) == 0)
            #expect(info.st_size == big.count)
            #expect(info.st_mode == S_IFREG | 0o644)
            #expect(info.st_mtim.tv_sec == 1_700_000_000 && info.st_mtim.tv_nsec == 500_000_000)
            #expect(stat(root + "/models/missing", &info) == -1 && errno == ENOENT)

            // A read at an offset, through the kernel's page cache or not.
            let fd = open(root + "/models/weights.bin", O_RDONLY)
            #expect(fd >= 0)
            var chunk = [UInt8](repeating: 0, count: 4096)
            #expect(pread(fd, &chunk, 4096, 2_000_000) == 4096)
            #expect(chunk == Array(big[2_000_000..<2_004_096]))
            close(fd)

            var figures = statvfs()
            #expect(statvfs(root, &figures) == 0)
            #expect(figures.f_blocks == 1000 && figures.f_bfree == 250 && figures.f_frsize == 4096)
        }
        #expect(tree.opened >= 1)
    }

    @Test func aListingCarriesEachNamesAttributesSoStatNeedsNoLookup() throws {
        let tree = MemoryTree()
        let directory = tree.add("data")
        for index in 0..<500 { tree.add("file-\(index)", in: directory, bytes: Array(repeating: 7, count: index)) }
        try withMount(tree) { (root: String) throws in
            var info = stat()
            #expect(stat(root + "/data", &info) == 0)
            let before = tree.lookupsAnswered
            // One pass over the directory (READDIRPLUS) answers each name's attributes; the kernel
            // decides how many it takes that way, so the counts are bounds: at most one lookup per name
            // for the listing, and the stat of every name afterwards needs almost none (without
            // READDIRPLUS it would need all 500).
            let names = try FileManager.default.contentsOfDirectory(atPath: root + "/data")
            #expect(names.count == 500)
            let listed = tree.lookupsAnswered - before
            #expect(listed <= 500)
            for index in 0..<500 {
                #expect(stat(root + "/data/file-\(index)", &info) == 0 && info.st_size == index)
            }
            let afterwards = tree.lookupsAnswered - before - listed
            #expect(afterwards <= 25, "\(afterwards) of 500 stats needed a LOOKUP")
        }
    }

    @Test func changesAreRefusedAsReadOnly() throws {
        let tree = MemoryTree()
        tree.add("file", bytes: Array("x".utf8))
        try withMount(tree) { (root: String) throws in
            #expect(mkdir(root + "/new", 0o755) == -1 && errno == EROFS)
            let fd = open(root + "/file", O_WRONLY)
            #expect(fd == -1 && errno == EROFS)
            if fd >= 0 { close(fd) }
            #expect(unlink(root + "/file") == -1 && errno == EROFS)
            #expect(rename(root + "/file", root + "/other") == -1 && errno == EROFS)
            #expect(try String(contentsOfFile: root + "/file", encoding: .utf8) == "x")
        }
    }

    @Test func unmountingWithAFileStillOpenEndsTheSessionAndLeavesNoMountBehind() throws {
        let tree = MemoryTree()
        tree.add("file", bytes: Array("x".utf8))
        var mountPoint = ""
        var held: Int32 = -1
        try withMount(tree) { (root: String) throws in
            mountPoint = root
            #expect(try String(contentsOfFile: root + "/file", encoding: .utf8) == "x")
            let mounts = try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)
            #expect(mounts.contains(" \(root) fuse.silo "))
            // Kept open across the unmount: the unmount must still finish, not wait for it.
            held = open(root + "/file", O_RDONLY)
            #expect(held >= 0)
        }
        // Reaching here at all is the point: the unmount returned with the file still open.
        close(held)
        let mounts = try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)
        #expect(!mounts.contains(" \(mountPoint) "))
    }
}
