import Foundation
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `silo mount` through the kernel (root, as CI runs), against the embedded store and a server.
@Suite(.timeLimit(.minutes(10)), .ownThread) struct MountTests {
    final class Setup {
        let directory: TemporaryDirectory
        let silo: SiloBinary
        let server: SiloServerProcess?

        init(_ store: Store) throws {
            directory = try TemporaryDirectory("silo-mount")
            (silo, server) = try store.binary(home: directory.path + "/home", serverData: directory.path + "/server")
        }

        func ok(_ arguments: String...) throws -> SiloBinary.Output {
            try ok(arguments)
        }

        func ok(_ arguments: [String]) throws -> SiloBinary.Output {
            let output = try silo.run(arguments)
            #expect(output.status == 0, "silo \(arguments.joined(separator: " ")): \(output.stderr)")
            return output
        }

        /// A foreground mount, returned once it is in place.
        func mount(_ volume: String, at name: String, _ extra: String...) throws -> (Process, String) {
            let point = directory.file(name)
            try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true)
            let (process, line) = try silo.startReadingFirstLine(
                ["mount", volume, point, "--foreground"] + extra, log: directory.file("\(name).log")
            )
            try #require(line.hasPrefix("mounted '\(volume)'"), "silo mount: \(line) \((try? String(contentsOfFile: directory.file("\(name).log"), encoding: .utf8)) ?? "")")
            // The mount point as the kernel lists it: "… at PATH (pid N)".
            let at = try #require(line.range(of: " at "))
            let pid = try #require(line.range(of: " (pid ", options: .backwards))
            return (process, String(line[at.upperBound..<pid.lowerBound]))
        }

        deinit {
            server?.stop()
            directory.remove()
        }
    }

    /// Stops a foreground mount as a user would (SIGTERM) and waits for it to exit; a mount that
    /// does not unmount and exit 0 fails the test rather than leaking.
    static func stop(_ mount: Process, sourceLocation: SourceLocation = #_sourceLocation) {
        kill(mount.processIdentifier, SIGTERM)
        mount.waitUntilExit()
        #expect(
            mount.terminationReason == .exit && mount.terminationStatus == 0,
            "a mount did not stop cleanly on SIGTERM (status \(mount.terminationStatus))", sourceLocation: sourceLocation
        )
    }

    @Test func anOrdinaryUserMountsThroughFusermountAndTheMountServesItsReads() throws {
        let setup = try Setup(.embedded)
        // Everything belongs to `nobody`, who runs every command: no root anywhere but fusermount3's.
        let base = setup.directory.file("user")
        try FileManager.default.createDirectory(atPath: base + "/mnt", withIntermediateDirectories: true)
        let weights = pseudoRandomBytes(count: 9 * 1024 * 1024 + 7, seed: 71)
        try Data(weights).write(to: URL(fileURLWithPath: base + "/weights.bin"))
        chmod(setup.directory.path, 0o755)
        // Debian's udev rules make /dev/fuse 0666 (fusermount3 opens it as the user); this machine's
        // may be stricter, so give it those permissions for the test, and put its own back after.
        var device = stat()
        try #require(stat("/dev/fuse", &device) == 0)
        chmod("/dev/fuse", 0o666)
        defer { chmod("/dev/fuse", device.st_mode & 0o7777) }
        for path in [base, base + "/mnt", base + "/weights.bin"] { chown(path, 65534, 65534) }
        func asNobody(_ arguments: [String]) throws -> (status: Int32, stdout: Data, stderr: String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"] + arguments
            process.environment = ["SILO_HOME": base + "/home", "PATH": "/usr/bin:/bin", "HOME": base]
            let out = Pipe()
            let err = Pipe()
            process.standardOutput = out
            process.standardError = err
            process.standardInput = FileHandle.nullDevice
            try process.run()
            let stdout = out.fileHandleForReading.readDataToEndOfFile()
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, stdout, stderr)
        }
        func silo(_ arguments: String...) throws -> Data {
            let result = try asNobody([SiloBinary.path] + arguments)
            #expect(result.status == 0, "silo \(arguments.joined(separator: " ")) as nobody: \(result.stderr)")
            return result.stdout
        }
        _ = try silo("volume", "create", "v")
        _ = try silo("volume", "put", "v", base + "/weights.bin", "/weights.bin")
        _ = try silo("mount", "v", base + "/mnt")
        let root = try #require(MountTests.canonical(base + "/mnt"))
        #expect(Self.isMounted(root))
        #expect(try asNobody(["/bin/cat", root + "/weights.bin"]).stdout == Data(weights))
        #expect(try asNobody(["/bin/sh", "-c", "echo mine > \(root)/new.txt"]).status == 0)
        #expect(String(decoding: try silo("volume", "commit", root), as: UTF8.self).contains("as version 2"))
        let status = String(decoding: try silo("volume", "status", root), as: UTF8.self)
        // No CAP_SYS_ADMIN, so no passthrough: the mount serves every read itself.
        #expect(status.contains("passthrough: off"), "\(status)")
        _ = try silo("umount", root)
        #expect(!Self.isMounted(root))

        // Killed with SIGKILL: fusermount3 (auto_unmount) takes the mount down.
        let line = String(decoding: try silo("mount", "v", root, "--read-only"), as: UTF8.self)
        let pid = try #require(line.range(of: "(pid ").flatMap { Int32(line[$0.upperBound...].prefix { $0.isNumber }) })
        kill(pid, SIGKILL)
        let deadline = Date().addingTimeInterval(10)
        while Self.isMounted(root) && Date() < deadline { usleep(10_000) }
        #expect(!Self.isMounted(root), "a killed mount was left mounted")
    }

    static func canonical(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func isMounted(_ path: String) -> Bool {
        // Read to the end in pieces: /proc files report size 0, and the table may span many pages.
        let mounts = String(decoding: FileHandle(forReadingAtPath: "/proc/self/mounts")?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
        return mounts.contains(" \(path) fuse.silo ")
    }

    @Test(arguments: Store.allCases) func aReadOnlyMountShowsOneVersionAsFiles(_ store: Store) throws {
        let setup = try Setup(store)
        let weights = pseudoRandomBytes(count: 20 * 1024 * 1024 + 3, seed: 11)
        try setup.directory.write("data/weights.bin", weights)
        try setup.directory.write("data/notes/readme.txt", "version one")
        _ = try setup.ok("volume", "create", "models")
        _ = try setup.ok("volume", "put", "models", setup.directory.file("data"), "/data")
        try setup.directory.write("changed.txt", "version two")
        _ = try setup.ok("volume", "put", "models", setup.directory.file("changed.txt"), "/data/notes/readme.txt", "--force")

        let (process, root) = try setup.mount("models", at: "mnt", "--read-only")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).sorted() == ["data"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/data").sorted() == ["notes", "weights.bin"])
        #expect(try String(contentsOfFile: root + "/data/notes/readme.txt", encoding: .utf8) == "version two")
        #expect(FileManager.default.contents(atPath: root + "/data/weights.bin") == Data(weights))
        var info = stat()
        #expect(stat(root + "/data/weights.bin", &info) == 0 && info.st_size == weights.count)
        #expect(stat(root + "/data/missing", &info) == -1 && errno == ENOENT)
        #expect(open(root + "/data/new.txt", O_CREAT | O_WRONLY, 0o644) == -1 && errno == EROFS)
        #expect(unlink(root + "/data/weights.bin") == -1 && errno == EROFS)

        // An older version, mounted beside it.
        let (old, oldRoot) = try setup.mount("models", at: "v1", "--read-only", "--version", "1")
        #expect(try String(contentsOfFile: oldRoot + "/data/notes/readme.txt", encoding: .utf8) == "version one")

        for (mount, path) in [(process, root), (old, oldRoot)] {
            kill(mount.processIdentifier, SIGTERM)
            mount.waitUntilExit()
            #expect(mount.terminationStatus == 0)
            #expect(!Self.isMounted(path))
        }
    }

    @Test func aDetachedMountIsInPlaceWhenTheCommandReturnsAndUmountRemovesIt() throws {
        let setup = try Setup(.embedded)
        try setup.directory.write("f.txt", "x")
        _ = try setup.ok("volume", "create", "v")
        _ = try setup.ok("volume", "put", "v", setup.directory.file("f.txt"))
        let point = setup.directory.file("mnt")
        try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true)
        let mounted = try setup.ok("mount", "v", point, "--read-only")
        #expect(mounted.stdout.contains("mounted 'v' version 1"))
        let resolved = URL(fileURLWithPath: point).resolvingSymlinksInPath().path
        #expect(Self.isMounted(resolved))
        #expect(try String(contentsOfFile: point + "/f.txt", encoding: .utf8) == "x")
        _ = try setup.ok("umount", point)
        #expect(!Self.isMounted(resolved))
        let again = try setup.silo.run(["umount", point])
        #expect(again.status == 2 && again.stderr.contains("not a silo mount"))
    }

    @Test func badMountRequestsSayWhatIsWrong() throws {
        let setup = try Setup(.embedded)
        _ = try setup.ok("volume", "create", "v")
        let point = setup.directory.file("mnt")
        try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true)
        let cases: [([String], Int32, String)] = [
            (["mount", "v", setup.directory.file("nowhere"), "--read-only"], 2, "not a directory"),
            (["mount", "v", point, "--read-only", "--version", "5"], 3, "versions 0 to 0"),
            (["mount", "nope", point, "--read-only"], 3, "does not exist"),
            (["mount", "bad name", point, "--read-only"], 2, "invalid volume name"),
        ]
        for (arguments, status, message) in cases {
            let output = try setup.silo.run(arguments)
            #expect(output.status == status, "\(arguments): \(output.stderr)")
            #expect(output.stderr.contains(message), "\(arguments): \(output.stderr)")
        }
        #expect(!Self.isMounted(URL(fileURLWithPath: point).resolvingSymlinksInPath().path))
    }

    /// `statfs` on a writable mount gives the figures of the disk its local changes go to: here a
    /// 48 MiB tmpfs of its own under SILO_HOME, whose free space shrinks as a file is written.
    @Test func statfsOnAMountReportsTheDiskHoldingItsLocalChanges() throws {
        let setup = try Setup(.embedded)
        let disk = setup.directory.file("disk")
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        try #require(Self.system("/bin/mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", disk) == 0, "mounting a tmpfs needs root (CI runs as root)")
        defer { #expect(Self.system("/bin/umount", disk) == 0, "the test's tmpfs stayed mounted at \(disk)") }
        let silo = SiloBinary(home: disk + "/home")
        #expect(try silo.run(["volume", "create", "v"]).status == 0)
        let point = setup.directory.file("mnt")
        try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true)
        let (mount, line) = try silo.startReadingFirstLine(["mount", "v", point, "--foreground"], log: setup.directory.file("mnt.log"))
        defer { Self.stop(mount) }
        try #require(line.hasPrefix("mounted 'v'"), "silo mount: \(line)")
        let root = try #require(Self.canonical(point))

        var mounted = statvfs()
        var local = statvfs()
        #expect(statvfs(root, &mounted) == 0 && statvfs(disk, &local) == 0)
        #expect(UInt64(mounted.f_frsize) * UInt64(mounted.f_blocks) == 48 << 20)
        #expect(mounted.f_frsize == local.f_frsize && mounted.f_blocks == local.f_blocks && mounted.f_files == local.f_files)

        // 8 MiB written through the mount lands on that disk, and the mount says so.
        let fd = open(root + "/big.bin", O_CREAT | O_WRONLY, 0o644)
        try #require(fd >= 0)
        let bytes = pseudoRandomBytes(count: 8 << 20, seed: 5)
        #expect(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count)
        #expect(fsync(fd) == 0)
        close(fd)
        var after = statvfs()
        #expect(statvfs(root, &after) == 0)
        let used = (Int64(mounted.f_bavail) - Int64(after.f_bavail)) * Int64(after.f_frsize)
        #expect(used >= 8 << 20 && used < 10 << 20, "free space fell by \(used) bytes")
    }

    /// Runs a system tool to completion; its exit status.
    static func system(_ tool: String, _ arguments: String...) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    @Test(arguments: Store.allCases) func randomChangesInAMountAgreeWithAModel(_ store: Store) throws {
        let setup = try Setup(store)
        // A base version with a directory tree, a small file and a file of two 8 MiB blocks.
        try setup.directory.write("base/docs/a.txt", "alpha")
        try setup.directory.write("base/docs/deep/b.txt", "beta")
        let large = pseudoRandomBytes(count: 9 * 1024 * 1024, seed: 21)
        try setup.directory.write("base/large.bin", large)
        _ = try setup.ok("volume", "create", "v")
        _ = try setup.ok("volume", "put", "v", setup.directory.file("base"), "/base")
        let (process, root) = try setup.mount("v", at: "mnt")
        defer { Self.stop(process) }

        var model = FileModel()
        model.files["base/docs/a.txt"] = Array("alpha".utf8)
        model.files["base/docs/deep/b.txt"] = Array("beta".utf8)
        model.files["base/large.bin"] = large
        model.directories = ["base", "base/docs", "base/docs/deep"]
        try model.verify(root)

        // A second mount of the same volume follows through commits and reloads.
        let (follower, other) = try setup.mount("v", at: "other")
        defer { Self.stop(follower) }
        var random = SplitMix(seed: store == .embedded ? 1 : 2)
        for step in 0..<400 {
            try model.applyRandomOperation(root, &random)
            if step % 50 == 49 { try model.verify(root) }
            if step % 100 == 99 {
                _ = try setup.ok("volume", "commit", root)
                _ = try setup.ok("volume", "reload", other)
                try model.verify(other)
            }
        }
        try model.verify(root)
    }
}

/// What a mount should contain, changed alongside it by the same operations.
struct FileModel {
    var files: [String: [UInt8]] = [:]
    var links: [String: String] = [:]
    var directories: Set<String> = []

    func exists(_ path: String) -> Bool { files[path] != nil || links[path] != nil || directories.contains(path) }

    func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }

    func children(_ directory: String) -> [String] {
        let all = Array(files.keys) + Array(links.keys) + Array(directories)
        return all.filter { parent($0) == directory }.sorted()
    }

    /// Every directory's listing, every file's bytes and every link's target, read through the mount.
    func verify(_ root: String) throws {
        for directory in [""] + directories.sorted() {
            let listed = try FileManager.default.contentsOfDirectory(atPath: root + "/" + directory).sorted()
            let expected = children(directory).map { String($0.split(separator: "/").last!) }.sorted()
            #expect(listed == expected, "listing of /\(directory)")
        }
        for (path, bytes) in files {
            let read = FileManager.default.contents(atPath: root + "/" + path).map(Array.init)
            let same = read == bytes  // compared outside the expectation, which would print both arrays
            #expect(same, "content of /\(path): \(read?.count ?? -1) bytes read, \(bytes.count) expected")
        }
        for (path, target) in links {
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/" + path)) == target, "link /\(path)")
        }
    }

    mutating func applyRandomOperation(_ root: String, _ random: inout SplitMix) throws {
        let directoriesList = [""] + directories.sorted()
        let filesList = files.keys.sorted()
        let anyPath = (Array(files.keys) + Array(links.keys) + Array(directories)).sorted()
        func newPath() -> String {
            let directory = directoriesList[random.below(directoriesList.count)]
            let name = "n\(random.below(40))"
            return directory.isEmpty ? name : directory + "/" + name
        }
        switch random.below(9) {
        case 0, 1:  // create (or overwrite) a file
            let path = newPath()
            guard !directories.contains(path), links[path] == nil else { return }
            let bytes = pseudoRandomBytes(count: random.below(20_000), seed: random.next())
            try Data(bytes).write(to: URL(fileURLWithPath: root + "/" + path))
            files[path] = bytes
        case 2, 3:  // write at an offset, possibly past the end
            guard !filesList.isEmpty else { return }
            let path = filesList[random.below(filesList.count)]
            var bytes = files[path]!
            let offset = random.below(bytes.count + 100)
            let data = pseudoRandomBytes(count: 1 + random.below(5000), seed: random.next())
            let fd = open(root + "/" + path, O_WRONLY)
            #expect(fd >= 0, "open /\(path) for writing")
            guard fd >= 0 else { return }
            #expect(pwrite(fd, data, data.count, off_t(offset)) == data.count)
            close(fd)
            if bytes.count < offset + data.count { bytes += [UInt8](repeating: 0, count: offset + data.count - bytes.count) }
            bytes.replaceSubrange(offset..<(offset + data.count), with: data)
            files[path] = bytes
        case 4:  // truncate
            guard !filesList.isEmpty else { return }
            let path = filesList[random.below(filesList.count)]
            let size = random.below((files[path]!.count) + 50)
            #expect(truncate(root + "/" + path, off_t(size)) == 0)
            var bytes = files[path]!
            if size < bytes.count { bytes.removeLast(bytes.count - size) } else { bytes += [UInt8](repeating: 0, count: size - bytes.count) }
            files[path] = bytes
        case 5:  // rename a file, link or directory to a free name
            guard !anyPath.isEmpty else { return }
            let source = anyPath[random.below(anyPath.count)]
            let target = newPath()
            guard !exists(target), !(target + "/").hasPrefix(source + "/") else { return }
            #expect(rename(root + "/" + source, root + "/" + target) == 0, "rename /\(source) /\(target): \(errno)")
            func moved(_ path: String) -> String? {
                path == source ? target : path.hasPrefix(source + "/") ? target + path.dropFirst(source.count) : nil
            }
            files = Dictionary(uniqueKeysWithValues: files.map { (moved($0.key) ?? $0.key, $0.value) })
            links = Dictionary(uniqueKeysWithValues: links.map { (moved($0.key) ?? $0.key, $0.value) })
            directories = Set(directories.map { moved($0) ?? $0 })
        case 6:  // remove a file or link
            let removable = (Array(files.keys) + Array(links.keys)).sorted()
            guard !removable.isEmpty else { return }
            let path = removable[random.below(removable.count)]
            #expect(unlink(root + "/" + path) == 0)
            files[path] = nil
            links[path] = nil
        case 7:  // make a directory or a symlink
            let path = newPath()
            guard !exists(path) else { return }
            if random.below(2) == 0 {
                #expect(mkdir(root + "/" + path, 0o755) == 0)
                directories.insert(path)
            } else {
                let target = "target-\(random.below(100))"
                #expect(symlink(target, root + "/" + path) == 0)
                links[path] = target
            }
        default:  // remove a directory: refused while it holds anything
            guard !directories.isEmpty else { return }
            let path = directories.sorted()[random.below(directories.count)]
            let result = rmdir(root + "/" + path)
            if children(path).isEmpty {
                #expect(result == 0, "rmdir /\(path)")
                directories.remove(path)
            } else {
                #expect(result == -1 && errno == ENOTEMPTY, "rmdir of non-empty /\(path)")
            }
        }
    }
}
