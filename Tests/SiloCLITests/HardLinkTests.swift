import Foundation
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Hard links through the kernel: `os.link` in a mount, as lock libraries, package managers and git
/// use it, committed as one file and seen so by another mount and by `get`; `put` stores a linked
/// local file once.
@Suite(.timeLimit(.minutes(5)), .ownThread) struct HardLinkTests {
    @Test func linksInAMountAreOneFileForRootAndForAUser() throws {
        let volume = try MountedVolume("silo-links", openToOthers: true)
        defer { volume.close() }
        let (directory, silo, mountPoint, other) = (volume.directory, volume.silo, volume.mountPoint, volume.other)
        #expect(try volume.mount(at: mountPoint))
        #expect(mkdir(mountPoint + "/work", 0o777) == 0 && chmod(mountPoint + "/work", 0o777) == 0)

        let program = """
            import os, sys
            root = sys.argv[1]
            a, b = os.path.join(root, "a"), os.path.join(root, "sub", "b")
            os.mkdir(os.path.join(root, "sub"))
            with open(a, "w") as f: f.write("first")
            os.link(a, b)
            sa, sb = os.stat(a), os.stat(b)
            print(sa.st_ino == sb.st_ino, sa.st_nlink, sb.st_nlink)
            with open(b, "a") as f: f.write(" and more")
            print(open(a).read())
            os.chmod(a, 0o600)
            print(oct(os.stat(b).st_mode & 0o777))
            for bad in (os.path.join(root, "sub"),):
                try: os.link(bad, bad + "2")
                except PermissionError: print("no directory links")
            try: os.link(a, b)
            except FileExistsError: print("exists")
            os.link(a, os.path.join(root, "c"))
            os.unlink(a)
            print(os.stat(b).st_nlink, open(os.path.join(root, "c")).read())
            """
        let expected = "True 2 2\nfirst and more\n0o600\nno directory links\nexists\n2 first and more\n"
        let asRoot = try runPython(program, [mountPoint])
        #expect(asRoot.status == 0 && asRoot.output == expected, "\(asRoot.output)")
        let asUser = try runAsNobody(["/usr/bin/python3", "-c", program, mountPoint + "/work"])
        #expect(asUser.status == 0 && asUser.output == expected, "\(asUser.output)")

        #expect(try silo.run(["volume", "commit", mountPoint]).status == 0)
        let listed = try silo.run(["volume", "ls", "v", "/work", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        let c = try #require(rows.first { $0["name"] as? String == "c" })
        #expect(c["links"] as? Int == 2)
        #expect((c["file"] as? String)?.count == 16)

        // Another mount sees one file under two names; get restores them linked.
        #expect(try volume.mount(at: other))
        var first = stat(), second = stat()
        #expect(stat(other + "/c", &first) == 0 && stat(other + "/sub/b", &second) == 0)
        #expect(first.st_ino == second.st_ino && first.st_nlink == 2)
        try "through the other".write(toFile: other + "/sub/b", atomically: false, encoding: .utf8)
        #expect(try String(contentsOfFile: other + "/c", encoding: .utf8) == "through the other")
        #expect(try silo.run(["volume", "get", "v", "/", directory.file("out")]).status == 0)
        #expect(stat(directory.file("out/c"), &first) == 0 && stat(directory.file("out/sub/b"), &second) == 0)
        #expect(first.st_ino == second.st_ino && first.st_nlink == 2)
        #expect(try String(contentsOfFile: directory.file("out/work/c"), encoding: .utf8) == "first and more")
    }

    @Test func putStoresALinkedLocalFileOnceAndGetLinksItAgain() throws {
        let directory = try TemporaryDirectory("silo-links-put")
        defer { directory.remove() }
        let silo = SiloBinary(home: directory.file("home"))
        let tree = directory.file("tree")
        try FileManager.default.createDirectory(atPath: tree + "/objects", withIntermediateDirectories: true)
        let bytes = pseudoRandomBytes(count: 3 << 20, seed: 5)
        try Data(bytes).write(to: URL(fileURLWithPath: tree + "/model.bin"))
        #expect(link(tree + "/model.bin", tree + "/objects/model.bin") == 0)
        #expect(try silo.run(["volume", "create", "v"]).status == 0)
        let put = try silo.run(["volume", "put", "v", tree, "/t"])
        // Two names, one file's bytes read and sent once.
        #expect(put.status == 0 && put.stdout.hasPrefix("put 2 files (3.0 MiB)"), "\(put.stdout) \(put.stderr)")
        let listed = try silo.run(["volume", "ls", "v", "/t/objects", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        #expect(rows.first?["links"] as? Int == 2, "\(listed.stdout)")

        #expect(try silo.run(["volume", "get", "v", "/t", directory.file("back")]).status == 0)
        var first = stat(), second = stat()
        #expect(stat(directory.file("back/model.bin"), &first) == 0 && stat(directory.file("back/objects/model.bin"), &second) == 0)
        #expect(first.st_ino == second.st_ino && first.st_nlink == 2)
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory.file("back/objects/model.bin")))) == bytes)
    }
}
