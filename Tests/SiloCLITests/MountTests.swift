import Foundation
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `silo mount` through the kernel (root, as CI runs), against the embedded store and a server.
@Suite struct MountTests {
    final class Setup {
        let directory: TemporaryDirectory
        let silo: SiloBinary
        let server: SiloServerProcess?

        init(_ store: Store) throws {
            directory = try TemporaryDirectory("silo-mount")
            (silo, server) = try store.binary(home: directory.path + "/home", serverData: directory.path + "/server")
        }

        func ok(_ arguments: String...) throws -> SiloBinary.Output {
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
            return (process, point)
        }

        deinit {
            server?.stop()
            directory.remove()
        }
    }

    static func isMounted(_ path: String) -> Bool {
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        return mounts.contains(" \(path) fuse.silo ")
    }

    @Test(arguments: Store.allCases) func aReadOnlyMountShowsOneVersionAsFiles(_ store: Store) throws {
        let setup = try Setup(store)
        let weights = pseudoRandomBytes(count: 20 * 1024 * 1024 + 3, seed: 11)
        try setup.directory.write("data/weights.bin", weights)
        try setup.directory.write("data/notes/readme.txt", "version one")
        _ = try setup.ok("volume", "create", "models")
        _ = try setup.ok("volume", "put", "models", setup.directory.file("data"), "/")
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
            (["mount", "v", point], 2, "--read-only"),
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
}
