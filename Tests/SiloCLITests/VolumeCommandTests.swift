import Foundation
import SiloCore
import SiloTesting
import Testing

/// Where the CLI's commands go: every test here runs both ways and must behave the same.
enum Store: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// The embedded store under a temporary SILO_HOME.
    case embedded
    /// A real `silo serve` on a free loopback port, through SILO_SERVER and SILO_TOKEN.
    case server

    var testDescription: String { rawValue }

    /// The binary set up for this store over `home`, and the server it talks to, if any.
    func binary(home: String, serverData: String) throws -> (SiloBinary, SiloServerProcess?) {
        let local = SiloBinary(home: home)
        guard self == .server else { return (local, nil) }
        let server = try SiloServerProcess(dataDirectory: serverData)
        return (local.using(server), server)
    }
}

/// The built `silo` binary as a user drives it, against the embedded store and against a server.
@Suite(.timeLimit(.minutes(10)), .ownThread) struct VolumeCommandTests {
    struct Session {
        let directory: TemporaryDirectory
        let silo: SiloBinary
        let server: SiloServerProcess?

        init(_ store: Store) throws {
            directory = try TemporaryDirectory("silo-cli")
            (silo, server) = try store.binary(home: directory.path + "/home", serverData: directory.path + "/server")
        }

        func close() {
            if let server {
                #expect(server.stop() == 0, "silo serve did not stop cleanly on SIGTERM: \(server.log)")
                // Everything went through the server: the client never opened an embedded store.
                #expect(!FileManager.default.fileExists(atPath: silo.home + "/metadata.sqlite"))
            }
            directory.remove()
        }

        @discardableResult
        func ok(_ arguments: String...) throws -> SiloBinary.Output {
            let output = try silo.run(arguments, in: directory.path)
            #expect(output.status == 0, "silo \(arguments.joined(separator: " ")) failed: \(output.stderr)")
            return output
        }

        func fails(_ status: Int32, _ arguments: String...) throws -> String {
            let output = try silo.run(arguments, in: directory.path)
            #expect(output.status == status, "silo \(arguments.joined(separator: " ")): \(output.stderr)")
            #expect(output.stderr.hasPrefix("silo: error: "))
            #expect(output.stderr.split(separator: "\n").count == 1)
            return output.stderr
        }

        func versions(_ volume: String) throws -> Int {
            let output = try ok("volume", "history", volume, "--json")
            let list = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]]
            return list?.count ?? -1
        }
    }

    /// `put` of a directory places its contents at the remote path every time (Modal's rule), so a
    /// put run again updates in place; a file goes into a remote path ending in `/`.
    @Test(arguments: Store.allCases) func aDirectoryPutAgainUpdatesInPlaceAndAFileGoesIntoATrailingSlash(_ store: Store) throws {
        let s = try Session(store)
        defer { s.close() }
        try s.directory.write("tree/a.txt", "one")
        try s.directory.write("tree/sub/b.txt", "two")
        try s.directory.write("best.pt", "weights")
        try s.ok("volume", "create", "v")
        func paths() throws -> [String] {
            let listed = try s.ok("volume", "ls", "v", "/", "--recursive", "--json").stdout
            let rows = try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [[String: Any]] ?? []
            return rows.compactMap { $0["path"] as? String }.sorted()
        }
        try s.ok("volume", "put", "v", "tree", "/tree")
        // Again, unchanged: every file is there already, so nothing is overwritten without --force.
        let again = try s.fails(4, "volume", "put", "v", "tree", "/tree")
        #expect(again.contains("/tree/a.txt"), "\(again)")
        try s.directory.write("tree/a.txt", "one, changed")
        try s.ok("volume", "put", "v", "tree", "/tree", "--force")
        #expect(try s.ok("volume", "get", "v", "/tree/a.txt", "-").stdout == "one, changed")
        // A directory's contents at the root; a file into a directory named with a trailing slash,
        // and at a path of its own without one.
        try s.ok("volume", "put", "v", "tree/sub", "/")
        try s.ok("volume", "put", "v", "best.pt", "/final/")
        try s.ok("volume", "put", "v", "best.pt", "/renamed.pt")
        try s.ok("volume", "put", "v", "best.pt")
        #expect(try paths() == ["/b.txt", "/best.pt", "/final", "/final/best.pt", "/renamed.pt", "/tree", "/tree/a.txt", "/tree/sub", "/tree/sub/b.txt"])
    }

    /// Scripts that make a volume if missing, or drop one if there, say so and succeed.
    @Test(arguments: Store.allCases) func createAndDeleteCanBeToldWhatIsSoAlready(_ store: Store) throws {
        let s = try Session(store)
        defer { s.close() }
        try s.ok("volume", "create", "v")
        _ = try s.fails(4, "volume", "create", "v")
        #expect(try s.ok("volume", "create", "v", "--allow-existing").stdout == "volume 'v' exists already\n")
        // A volume of the name but of the other kind is not the one asked for.
        #expect(try s.fails(4, "nfs", "create", "v", "--allow-existing").contains("snapshot volume"))
        try s.ok("volume", "delete", "v", "--yes")
        _ = try s.fails(3, "volume", "delete", "v", "--yes")
        #expect(try s.ok("volume", "delete", "v", "--yes", "--allow-missing").stdout == "no volume 'v' to delete\n")
        #expect(try s.ok("nfs", "create", "v", "--allow-existing").stdout == "created shared volume 'v'\n")
    }

    @Test(arguments: Store.allCases) func theQuickStartTour(_ store: Store) throws {
        let s = try Session(store)
        defer { s.close() }
        try s.directory.write("models/a.txt", "hello")
        let weights = pseudoRandomBytes(count: 9 * 1024 * 1024, seed: 7)
        try s.directory.write("models/sub/weights.bin", weights)

        #expect(try s.ok("volume", "create", "models").stdout == "created volume 'models'\n")
        #expect(try s.ok("volume", "put", "models", "models").stdout.contains("put 2 files"))
        #expect(try s.ok("volume", "ls", "models").stdout.contains("models/"))
        let listing = try s.ok("volume", "ls", "models", "/models", "--json").stdout
        let entries = try JSONSerialization.jsonObject(with: Data(listing.utf8)) as! [[String: Any]]
        #expect(entries.map { $0["name"] as! String } == ["a.txt", "sub"])
        #expect(try s.ok("volume", "get", "models", "/models/a.txt", "-").stdout == "hello")
        try s.ok("volume", "get", "models", "/models", "copy")
        #expect(try s.directory.read("copy/sub/weights.bin") == weights)

        let history = try s.ok("volume", "history", "models", "--json").stdout
        let versions = try JSONSerialization.jsonObject(with: Data(history.utf8)) as! [[String: Any]]
        #expect(versions.count == 2)
        #expect(versions[1]["filesAdded"] as? Int == 2)
        #expect(versions[1]["bytesAdded"] as? Int == weights.count + 5)
        #expect(try s.ok("volume", "list").stdout.contains("models"))
    }

    @Test(arguments: Store.allCases) func rmCpDiffRenameAndDelete(_ store: Store) throws {
        let s = try Session(store)
        defer { s.close() }
        try s.directory.write("d/x", "x")
        try s.directory.write("d/y", "y")
        try s.ok("volume", "create", "v")
        try s.ok("volume", "put", "v", "d")
        try s.ok("volume", "cp", "v", "/d", "/e")
        #expect(try s.ok("volume", "get", "v", "/e/y", "-").stdout == "y")
        #expect(try s.fails(2, "volume", "rm", "v", "/d").contains("not empty"))
        try s.ok("volume", "rm", "v", "/d", "-r")
        #expect(try s.ok("volume", "diff", "v", "2").stdout == "- /d/\n- /d/x\n- /d/y\n")
        #expect(try s.ok("volume", "ls", "v", "/d", "--version", "1").stdout.contains("x"))
        try s.ok("volume", "rename", "v", "w")
        #expect(try s.ok("volume", "get", "w", "/e/x", "-").stdout == "x")
        #expect(try s.fails(2, "volume", "delete", "w").contains("--yes"))
        try s.ok("volume", "delete", "w", "--yes")
        #expect(try s.fails(3, "volume", "ls", "w").contains("does not exist"))
    }

    @Test(arguments: Store.allCases) func badInputGetsAClearErrorAndChangesNothing(_ store: Store) throws {
        let s = try Session(store)
        defer { s.close() }
        try s.directory.write("f.txt", "one")
        try s.directory.write("dir/sub/inner", "i")
        try s.ok("volume", "create", "v")
        try s.ok("volume", "put", "v", "f.txt")

        #expect(try s.fails(2, "volume", "create", "bad name").contains("invalid volume name"))
        #expect(try s.fails(2, "volume", "create", String(repeating: "x", count: 65)).contains("1 to 64"))
        #expect(try s.fails(4, "volume", "create", "v").contains("already exists"))
        #expect(try s.fails(3, "volume", "ls", "nope").contains("silo volume create nope"))
        #expect(try s.fails(2, "volume", "ls", "v", "/../etc").contains("'..' is not allowed"))
        #expect(try s.fails(2, "volume", "put", "v", "f.txt", "/a/../../x").contains("'..'"))
        #expect(try s.fails(2, "volume", "put", "v", "f.txt", "bad\u{1}name").contains("control characters"))
        #expect(try s.fails(2, "volume", "put", "v", "missing.txt").contains("no such file"))
        #expect(try s.fails(3, "volume", "get", "v", "/missing").contains("does not exist"))
        #expect(try s.fails(3, "volume", "ls", "v", "/", "--version", "7").contains("versions 0 to 1"))
        // Overwrites need --force; the volume is unchanged without it.
        try s.directory.write("f.txt", "two")
        #expect(try s.fails(4, "volume", "put", "v", "f.txt").contains("--force"))
        #expect(try s.ok("volume", "get", "v", "/f.txt", "-").stdout == "one")
        // A directory onto a file, and a file onto a directory.
        #expect(try s.fails(2, "volume", "put", "v", "dir", "/f.txt").contains("a file is there"))
        try s.ok("volume", "put", "v", "dir", "/d")
        try s.directory.write("sub", "a file named like the directory /d/sub")
        #expect(try s.fails(2, "volume", "put", "v", "sub", "/d/").contains("a directory is there"))
        // Usage errors are the argument parser's: exit 64 (EX_USAGE) with the usage, and nothing runs.
        for usage in [["volume", "--bogus"], ["volume", "create"], ["volume", "put", "v", "f.txt", "--no-such-flag"]] {
            let output = try s.silo.run(usage, in: s.directory.path)
            #expect(output.status == 64, "silo \(usage.joined(separator: " ")): \(output.stderr)")
            #expect(output.stderr.contains("Usage: silo volume"), "\(output.stderr)")
        }
        #expect(try s.versions("v") == 3)
        // Local files are not overwritten by get without --force.
        #expect(try s.fails(4, "volume", "get", "v", "/f.txt").contains("--force"))
        #expect(try s.directory.read("f.txt") == Array("two".utf8))
        try s.ok("volume", "get", "v", "/f.txt", "--force")
        #expect(try s.directory.read("f.txt") == Array("one".utf8))
        try s.ok("volume", "put", "v", "f.txt", "--force")
        #expect(try s.ok("volume", "get", "v", "/f.txt", "-").stdout == "one")
    }

    @Test(arguments: Store.allCases) func twoPutProcessesAtOnceBothLand(_ store: Store) throws {
        let s = try Session(store)
        defer { s.close() }
        try s.ok("volume", "create", "shared")
        for writer in 0..<4 {
            for file in 0..<50 { try s.directory.write("w\(writer)/f\(file)", "\(writer)-\(file)") }
            try s.directory.write("w\(writer)/big", pseudoRandomBytes(count: 3 * 1024 * 1024, seed: UInt64(writer)))
        }
        let processes = try (0..<4).map { try s.silo.start(["volume", "put", "shared", "w\($0)"], in: s.directory.path) }
        for process in processes {
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
        }
        #expect(try s.versions("shared") == 5)
        for writer in 0..<4 {
            #expect(try s.ok("volume", "get", "shared", "/w\(writer)/f49", "-").stdout == "\(writer)-49")
            try s.ok("volume", "get", "shared", "/w\(writer)/big", "big\(writer)")
            #expect(try s.directory.read("big\(writer)") == pseudoRandomBytes(count: 3 * 1024 * 1024, seed: UInt64(writer)))
        }
    }

    @Test(arguments: Store.allCases) func aKilledPutLeavesTheWholeCommitOrNoneOfIt(_ store: Store) throws {
        let s = try Session(store)
        defer { s.close() }
        try s.ok("volume", "create", "v")
        for file in 0..<40 { try s.directory.write("batch/f\(file)", pseudoRandomBytes(count: 600 * 1024, seed: UInt64(file))) }
        for file in 0..<200 { try s.directory.write("batch/small/s\(file)", "s\(file)") }
        // Kill at spread-out moments of the put: before, during and after the commit's transaction.
        for (round, delay) in [0.0, 0.05, 0.15, 0.3, 0.6, 1.2].enumerated() {
            let before = try s.versions("v")
            let process = try s.silo.start(["volume", "put", "v", "batch", "/r\(round)"], in: s.directory.path)
            Thread.sleep(forTimeInterval: delay)  // fault injection: the moment of the kill, not synchronisation
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let after = try s.versions("v")
            let landed = after == before + 1
            #expect(after == before || landed)
            let listing = try s.silo.run(["volume", "ls", "v", "/r\(round)"], in: s.directory.path)
            if landed {
                try s.ok("volume", "get", "v", "/r\(round)", "got\(round)")
                for file in [0, 39] {
                    #expect(try s.directory.read("got\(round)/f\(file)") == pseudoRandomBytes(count: 600 * 1024, seed: UInt64(file)))
                }
                #expect(try FileManager.default.contentsOfDirectory(atPath: s.directory.file("got\(round)/small")).count == 200)
            } else {
                #expect(listing.status == 3)
            }
        }
        // The store still works after every kill.
        try s.ok("volume", "put", "v", "batch", "/final")
        #expect(try s.ok("volume", "ls", "v", "/final/small").stdout.contains("s199"))
    }

    @Test(arguments: Store.allCases) func aFullDiskMidPutLeavesTheVolumeAsItWas(_ store: Store) throws {
        let s = try Session(store)
        defer { s.close() }
        let home = s.directory.file("small-disk")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        // A 16 MiB file system of our own (root, as in CI): the put below needs more.
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=16m", "tmpfs", home]
        try mount.run()
        mount.waitUntilExit()
        try #require(mount.terminationStatus == 0, "mounting a tmpfs needs root; run the suite as root (CI does)")
        defer { #expect(MountTests.system("/bin/umount", home) == 0, "the test's tmpfs stayed mounted at \(home)") }
        let (silo, server) = try store.binary(home: home + "/silo", serverData: home + "/server")
        defer { server?.stop() }
        #expect(try silo.run(["volume", "create", "v"]).status == 0)
        try s.directory.write("small.txt", "kept")
        #expect(try silo.run(["volume", "put", "v", s.directory.file("small.txt")]).status == 0)
        try s.directory.write("huge.bin", pseudoRandomBytes(count: 40 * 1024 * 1024, seed: 9))
        let full = try silo.run(["volume", "put", "v", s.directory.file("huge.bin")])
        #expect(full.status == 6)
        // Out of space writing a block or the metadata, whichever filled the disk first.
        #expect(full.stderr.contains("No space left on device") || full.stderr.contains("out of disk space"), "\(full.stderr)")
        #expect(full.stderr.contains("nothing was changed"))
        let history = try silo.run(["volume", "history", "v", "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(history.stdout.utf8)) as? [Any])?.count == 2)
        #expect(try silo.run(["volume", "get", "v", "/small.txt", "-"]).stdout == "kept")
        #expect(try silo.run(["volume", "ls", "v", "/huge.bin"]).status == 3)
    }

    /// Names are bytes: an NFC and an NFD `é` are two files, stored and counted as two.
    @Test(arguments: Store.allCases) func canonicallyEquivalentNamesAreTwoFiles(_ store: Store) throws {
        let s = try Session(store)
        defer { s.close() }
        try s.directory.write("names/caf\u{E9}", "composed")
        try s.directory.write("names/cafe\u{0301}", "decomposed")
        try s.ok("volume", "create", "v")
        #expect(try s.ok("volume", "put", "v", "names").stdout.contains("put 2 files"))
        let listing = try s.ok("volume", "ls", "v", "/names", "--json").stdout
        let names = (try JSONSerialization.jsonObject(with: Data(listing.utf8)) as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(names?.count == 2)
        #expect(try s.ok("volume", "get", "v", "/names/caf\u{E9}", "-").stdout == "composed")
        #expect(try s.ok("volume", "get", "v", "/names/cafe\u{0301}", "-").stdout == "decomposed")
        try s.ok("volume", "get", "v", "/names", "back")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: s.directory.file("back")).map { Array($0.utf8) }).count == 2)
    }

    /// A download writes beneath its destination only: a symlink already there is not followed, even
    /// with --force, and set-user-ID bits are dropped unless asked for.
    @Test(arguments: Store.allCases) func getWritesOnlyBeneathItsDestination(_ store: Store) throws {
        let s = try Session(store)
        defer { s.close() }
        try s.directory.write("tree/sub/file", "inside")
        try s.directory.write("tree/tool", "#!/bin/sh\n")
        chmod(s.directory.file("tree/tool"), 0o4755)
        try s.ok("volume", "create", "v")
        try s.ok("volume", "put", "v", "tree")

        try FileManager.default.createDirectory(atPath: s.directory.file("out/tree"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: s.directory.file("elsewhere"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: s.directory.file("out/tree/sub"), withDestinationPath: s.directory.file("elsewhere"))
        let refused = try s.fails(2, "volume", "get", "v", "/tree", "out", "--force")
        #expect(refused.contains("not a directory"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.directory.file("elsewhere")).isEmpty)

        try s.ok("volume", "get", "v", "/tree/tool", "plain")
        try s.ok("volume", "get", "v", "/tree/tool", "kept", "--preserve-mode")
        #expect(try FileManager.default.attributesOfItem(atPath: s.directory.file("plain"))[.posixPermissions] as? Int == 0o755)
        #expect(try FileManager.default.attributesOfItem(atPath: s.directory.file("kept"))[.posixPermissions] as? Int == 0o4755)
    }
}
