import Foundation
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Owners travel with a volume's paths: `put` records the local owners, `ls --json` shows them, `get`
/// restores them as root (a user keeps their own), and a mount shows them.
@Suite(.timeLimit(.minutes(5)), .ownThread) struct OwnershipTests {
    func owner(_ path: String) -> (UInt32, UInt32)? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return (info.st_uid, info.st_gid)
    }

    @Test(arguments: Store.allCases) func ownersArePutListedRestoredAndShownInAMount(_ store: Store) throws {
        let directory = try TemporaryDirectory("silo-owners")
        defer { directory.remove() }
        let (silo, server) = try store.binary(home: directory.file("home"), serverData: directory.file("server"))
        defer { server?.stop() }
        let tree = directory.file("tree")
        try directory.write("tree/alice.txt", "a")
        try directory.write("tree/shared/bob.txt", "b")
        try FileManager.default.createSymbolicLink(atPath: tree + "/link", withDestinationPath: "alice.txt")
        #expect(lchown(tree + "/alice.txt", 1001, 1001) == 0)
        #expect(lchown(tree + "/shared", 1002, 100) == 0)
        #expect(lchown(tree + "/shared/bob.txt", 1002, 100) == 0)
        #expect(lchown(tree + "/link", 1003, 1003) == 0)

        #expect(try silo.run(["volume", "create", "v"]).status == 0)
        #expect(try silo.run(["volume", "put", "v", tree, "/tree"]).status == 0)
        let listed = try silo.run(["volume", "ls", "v", "/tree", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        let owners = Dictionary(uniqueKeysWithValues: rows.map { ($0["name"] as! String, "\($0["uid"] ?? "-"):\($0["gid"] ?? "-")") })
        #expect(owners == ["alice.txt": "1001:1001", "shared": "1002:100", "link": "1003:1003"])

        // As root, get gives each path its recorded owner.
        #expect(try silo.run(["volume", "get", "v", "/tree", directory.file("back")]).status == 0)
        #expect(owner(directory.file("back/alice.txt"))! == (1001, 1001))
        #expect(owner(directory.file("back/shared"))! == (1002, 100))
        #expect(owner(directory.file("back/shared/bob.txt"))! == (1002, 100))
        #expect(owner(directory.file("back/link"))! == (1003, 1003))

        // A mount shows them too.
        let mountPoint = directory.file("mnt")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        #expect(try silo.run(["mount", "v", mountPoint, "--read-only"]).status == 0)
        defer { _ = try? silo.run(["umount", mountPoint]) }
        #expect(owner(mountPoint + "/tree/alice.txt")! == (1001, 1001))
        #expect(owner(mountPoint + "/tree/shared")! == (1002, 100))
        #expect(owner(mountPoint + "/tree/link")! == (1003, 1003))
        // A directory the commit made as a parent records none: the mounting user's.
        #expect(owner(mountPoint + "/tree")! == (getuid(), getgid()))
    }

    @Test func anOrdinaryUsersGetKeepsTheirOwnOwnership() throws {
        let directory = try TemporaryDirectory("silo-owners-user")
        defer { directory.remove() }
        // The user's home and destination must be theirs.
        #expect(chmod(directory.path, 0o755) == 0)
        let home = directory.file("home")
        let silo = SiloBinary(home: home)
        try directory.write("f.txt", "f")
        #expect(lchown(directory.file("f.txt"), 1001, 1001) == 0)
        #expect(try silo.run(["volume", "create", "v"]).status == 0)
        #expect(try silo.run(["volume", "put", "v", directory.file("f.txt"), "/f.txt"]).status == 0)
        let nobody = try #require(getpwnam("nobody")?.pointee)
        // The store becomes nobody's (as root), so nobody can use it.
        let chown = try Process.run(URL(fileURLWithPath: "/bin/chown"), arguments: ["-R", "nobody:nogroup", home])
        chown.waitUntilExit()
        #expect(chown.terminationStatus == 0)
        let out = directory.file("out")
        #expect(mkdir(out, 0o755) == 0 && lchown(out, nobody.pw_uid, nobody.pw_gid) == 0)
        let result = try asNobody([SiloBinary.path, "volume", "get", "v", "/f.txt", out + "/f.txt"], home: home)
        #expect(result == 0)
        #expect(owner(out + "/f.txt")! == (nobody.pw_uid, nobody.pw_gid))
    }

    /// The headline of ownership in a mount: what an ordinary user makes there is theirs (so they can
    /// write it again), chown and chgrp follow the kernel's rules, set-group-ID directories pass their
    /// group on, and all of it is committed and seen by another mount and by `ls`.
    @Test func whatAUserMakesInAMountIsTheirsAndOwnersAreCommitted() throws {
        let volume = try MountedVolume("silo-owners-mount", openToOthers: true)
        defer { volume.close() }
        let (silo, mountPoint, other) = (volume.silo, volume.mountPoint, volume.other)
        #expect(try volume.mount(at: mountPoint))
        let nobody = try #require(getpwnam("nobody")?.pointee)

        #expect(mkdir(mountPoint + "/shared", 0o777) == 0 && chmod(mountPoint + "/shared", 0o1777) == 0)
        // Written, then appended to, by its creator: the append needs the file to be theirs.
        #expect(try asNobody(["/bin/sh", "-c", "echo x > \(mountPoint)/shared/f && echo y >> \(mountPoint)/shared/f"]) == 0)
        #expect(try String(contentsOfFile: mountPoint + "/shared/f", encoding: .utf8) == "x\ny\n")
        #expect(owner(mountPoint + "/shared/f")! == (nobody.pw_uid, nobody.pw_gid))
        // Only root gives files away; the kernel says EPERM to anyone else.
        #expect(try asNobody(["/bin/chown", "root", mountPoint + "/shared/f"], expectFailure: true) != 0)
        #expect(try String(contentsOfFile: mountPoint + "/shared/f", encoding: .utf8) == "x\ny\n")
        // The sticky directory: another ordinary user may neither remove nor rename nobody's file.
        let asDaemon = ["/usr/bin/setpriv", "--reuid=daemon", "--regid=daemon", "--clear-groups", "--"]
        #expect(try runProgram(asDaemon[0], Array(asDaemon.dropFirst()) + ["/bin/rm", "-f", mountPoint + "/shared/f"]).status != 0)
        #expect(try runProgram(asDaemon[0], Array(asDaemon.dropFirst()) + ["/bin/mv", mountPoint + "/shared/f", mountPoint + "/shared/h"]).status != 0)
        #expect(FileManager.default.fileExists(atPath: mountPoint + "/shared/f"))
        // Names longer than a directory entry may be get ext4's error.
        let long = try runPython(
            "import errno, os, sys\ntry: os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY)\nexcept OSError as e: print(errno.errorcode[e.errno])",
            [mountPoint + "/shared/" + String(repeating: "n", count: 256)])
        #expect(long.output == "ENAMETOOLONG\n")
        try "g".write(toFile: mountPoint + "/shared/g", atomically: false, encoding: .utf8)
        #expect(chown(mountPoint + "/shared/g", 1234, 5678) == 0)
        #expect(owner(mountPoint + "/shared/g")! == (1234, 5678))

        // A write by someone else clears set-user-ID and set-group-ID, passed-through writes and
        // truncation alike (the kernel asks, the mount records the mode).
        for name in ["setid-write", "setid-truncate"] {
            try "s".write(toFile: mountPoint + "/" + name, atomically: false, encoding: .utf8)
            #expect(chmod(mountPoint + "/" + name, 0o6777) == 0)
        }
        #expect(try asNobody(["/bin/sh", "-c", "echo more >> \(mountPoint)/setid-write"]) == 0)
        #expect(try asNobody(["/usr/bin/truncate", "-s", "0", mountPoint + "/setid-truncate"]) == 0)
        var modes = stat()
        for name in ["setid-write", "setid-truncate"] {
            #expect(stat(mountPoint + "/" + name, &modes) == 0 && modes.st_mode & 0o7777 == 0o777, "\(name)")
        }

        // A set-group-ID directory passes its group to what is made in it, and the bit to directories.
        #expect(mkdir(mountPoint + "/team", 0o755) == 0)
        #expect(chown(mountPoint + "/team", 0, 5678) == 0 && chmod(mountPoint + "/team", 0o2775) == 0)
        try "x".write(toFile: mountPoint + "/team/x", atomically: false, encoding: .utf8)
        #expect(mkdir(mountPoint + "/team/sub", 0o755) == 0)
        #expect(owner(mountPoint + "/team/x")! == (0, 5678))
        #expect(owner(mountPoint + "/team/sub")! == (0, 5678))
        var info = stat()
        #expect(stat(mountPoint + "/team/sub", &info) == 0 && info.st_mode & S_ISGID != 0)

        #expect(try silo.run(["volume", "commit", mountPoint]).status == 0)
        let listed = try silo.run(["volume", "ls", "v", "/shared", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        let owners = Dictionary(uniqueKeysWithValues: rows.map { ($0["name"] as! String, "\($0["uid"] ?? "-"):\($0["gid"] ?? "-")") })
        #expect(owners == ["f": "\(nobody.pw_uid):\(nobody.pw_gid)", "g": "1234:5678"])
        #expect(try volume.mount(at: other, "--read-only"))
        #expect(owner(other + "/shared/f")! == (nobody.pw_uid, nobody.pw_gid))
        #expect(owner(other + "/team/sub")! == (0, 5678))
        #expect(stat(other + "/team/sub", &info) == 0 && info.st_mode & S_ISGID != 0)
    }

    /// Runs a command as `nobody`; what it says goes to the test's issues when it fails unexpectedly.
    func asNobody(_ command: [String], home: String? = nil, expectFailure: Bool = false) throws -> Int32 {
        let (status, said) = try runAsNobody(command, environment: home.map { ["SILO_HOME": $0] } ?? [:])
        if status != 0 && !expectFailure { Issue.record("\(command.joined(separator: " ")) as nobody: \(said)") }
        return status
    }
}
