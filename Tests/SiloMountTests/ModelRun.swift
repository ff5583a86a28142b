import Foundation
import SiloClient
import SiloCore
import SiloMount
import SiloTesting

/// Random operations, commits and reloads applied to two writable mounts of one volume and to the
/// reference model alike; every difference between them is recorded.
///
/// Writer A changes anything beneath `a/` (files, directories, symlinks, renames of whole trees),
/// which nobody else touches; writer B changes files `shared/b-*`; both overwrite `shared/common-*`,
/// where the commit applied last wins. So the model of a commit is exact: A's `a/` becomes the
/// volume's, and each path a writer changed takes that writer's state.
final class ModelRun {
    struct Writer {
        var mount: any MountUnderTest
        var name: String
        /// The subtree only this writer changes (A's `a`).
        var exclusive: String?
        var view: Tree
        /// Other paths changed since this writer's last commit.
        var dirty: Set<String> = []
    }

    let service: any VolumeService
    let volumeName: VolumeName
    let directory: TemporaryDirectory
    let cache: ContentCache
    var volume = Tree()
    var writers: [Writer] = []
    var random: SplitMix
    private(set) var mismatches: [String] = []
    var operations = 0
    private(set) var commits = 0
    private(set) var reloads = 0
    var step = 0
    var history: [String] = []
    var lastOperation = ""

    init(service: any VolumeService, directory: TemporaryDirectory, seed: UInt64) throws {
        self.service = service
        self.volumeName = try VolumeName("model")
        self.directory = directory
        self.cache = try ContentCache(root: directory.file("cache"), capacity: 1 << 30)
        self.random = SplitMix(seed: seed)
    }

    /// Makes the volume's first version and attaches both writers, `shape` deciding what a mount is.
    func start(_ shape: (VolumeFileSystem) -> any MountUnderTest) async throws {
        _ = try await service.createVolume(volumeName)
        var changes: [Change] = []
        func put(_ path: String, _ bytes: [UInt8]) async throws {
            let content: FileContent =
                bytes.count <= FileContent.inlineLimit ? .inline(bytes) : try await service.uploadBlocks(bytes, blockSize: 1 << 20)
            changes.append(.put(try VolumePath(path), FilePut(content: content, size: Int64(bytes.count), mtimeNanoseconds: 0)))
            volume.nodes[path] = .file(bytes, mode: 0o644)
        }
        try await put("a/docs/x.txt", Array("alpha".utf8))
        try await put("a/deep/y/z.txt", Array("beta".utf8))
        try await put("a/large.bin", pseudoRandomBytes(count: 3 << 20 + 123, seed: random.next()))
        for index in 0..<4 { try await put("shared/common-\(index)", Array("common \(index)".utf8)) }
        try await put("shared/b-0", Array("b".utf8))
        for folder in ["a", "a/docs", "a/deep", "a/deep/y", "shared"] { volume.nodes[folder] = .directory }
        _ = try await service.commit(Changeset(changes), to: volumeName, options: CommitOptions(author: "model"))
        for (name, exclusive) in [("A", "a"), ("B", nil)] as [(String, String?)] {
            writers.append(Writer(mount: shape(try await attach(writable: name)), name: name, exclusive: exclusive, view: volume))
        }
    }

    func attach(writable name: String?) async throws -> VolumeFileSystem {
        let latest = try await service.volume(volumeName).latestVersion
        return try VolumeFileSystem(
            service: service, volume: volumeName, version: latest, scratch: name.map { directory.file("scratch-\($0)-\(latest.rawValue)") },
            cache: cache
        )
    }

    /// Runs `count` steps: mostly operations, with commits and reloads among them, and full checks.
    func run(steps count: Int) async throws {
        for _ in 0..<count {
            guard mismatches.count < 20 else { return }
            step += 1
            let index = random.below(10) < 6 ? 0 : 1
            switch random.below(100) {
            case 0..<3: try await commit(index)
            case 3..<5: try await reload(index)
            default: await operate(index)
            }
            if step % 1000 == 0 { try await verifyAll() }
        }
        for index in writers.indices { try await commit(index) }
        try await verifyAll()
    }

    func record(_ message: String) {
        if mismatches.isEmpty, ProcessInfo.processInfo.environment["MODEL_TRACE"] != nil {
            print("FIRST MISMATCH: \(message)\n" + history.suffix(400).joined(separator: "\n"))
        }
        mismatches.append("step \(step): \(message)")
    }

    // MARK: Commits and reloads

    func commit(_ index: Int) async throws {
        let writer = writers[index]
        let made = try await writer.mount.fileSystem.commit(author: writer.name)
        if let made, ProcessInfo.processInfo.environment["MODEL_TRACE"] != nil {
            let version = made.result.version.version
            let changed = try await service.changes(in: volumeName, from: Version(version.rawValue - 1), to: version)
            history.append("step \(step) \(writer.name) commit \(version.rawValue) changed \(changed.map { "\($0)" })")
        }
        commits += 1
        if let exclusive = writer.exclusive { volume.replaceSubtree(exclusive, with: writer.view) }
        for path in writer.dirty { volume.nodes[path] = writer.view.nodes[path] }
        writers[index].dirty = []
        if commits % 10 == 0 { try await verifyFreshMount() }
    }

    func reload(_ index: Int) async throws {
        let writer = writers[index]
        let shown = try await writer.mount.fileSystem.reload()
        history.append("step \(step) \(writer.name) reload \(shown.rawValue)")
        var view = volume
        if let exclusive = writer.exclusive { view.replaceSubtree(exclusive, with: writer.view) }
        for path in writer.dirty { view.nodes[path] = writer.view.nodes[path] }
        writers[index].view = view
        reloads += 1
        if reloads % 4 == 0 { try await verify(writer.mount, against: view, as: "\(writer.name) after a reload") }
    }

    // MARK: Checks

    func verifyAll() async throws {
        for writer in writers { try await verify(writer.mount, against: writer.view, as: writer.name) }
    }

    /// A new read-only mount of the latest version must show exactly what the commits made.
    func verifyFreshMount() async throws {
        try await verify(Mount(fileSystem: try await attach(writable: nil)), against: volume, as: "a fresh mount")
    }

    /// Every directory's names and kinds, every file's bytes, size and mode, every link's target.
    func verify(_ mount: any MountUnderTest, against tree: Tree, as who: String) async throws {
        for folder in [""] + tree.nodes.filter({ $0.value == .directory }).keys.sorted() {
            do {
                let listed = try await mount.list(folder)
                let expected = tree.children(folder)
                if listed.keys.sorted() != expected {
                    record("\(who): /\(folder) lists \(listed.keys.sorted()), the model \(expected)")
                }
            } catch {
                record("\(who): listing /\(folder) failed: \(error)")
            }
        }
        for path in tree.nodes.keys.sorted() { await check(path, in: mount, against: tree, as: who) }
    }

    /// What `path` is in the mount against what it is in the model.
    func check(_ path: String, in mount: any MountUnderTest, against tree: Tree, as who: String) async {
        do {
            switch tree.nodes[path] {
            case .file(let bytes, let mode)?:
                let entry = try await mount.stat(path)
                let read = try await mount.read(path)
                if !same(read, bytes) { record("\(who): /\(path) reads \(read.count) bytes that differ from the model's \(bytes.count)") }
                if entry.size != Int64(bytes.count) { record("\(who): /\(path) says \(entry.size) bytes, the model \(bytes.count)") }
                if entry.mode & 0o7777 != mode { record("\(who): /\(path) has mode \(String(entry.mode, radix: 8)), the model \(String(mode, radix: 8))") }
            case .directory?:
                let entry = try await mount.stat(path)
                if entry.kind != .directory { record("\(who): /\(path) is a \(entry.kind), the model a directory") }
            case .link(let target)?:
                let read = try await mount.readLink(path)
                if read != target { record("\(who): /\(path) links to \(read), the model to \(target)") }
            case nil:
                if let entry = try? await mount.stat(path) { record("\(who): /\(path) is a \(entry.kind), the model has nothing there") }
            }
        } catch {
            record("\(who): /\(path): \(error)")
        }
    }
}

/// Whether two byte arrays are equal, compared as memory (a debug build compares arrays element by
/// element through generics, which dominated the run).
func same(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    return a.isEmpty || a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, a.count) == 0 } }
}
