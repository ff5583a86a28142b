import Foundation
import SiloTesting
import Testing

/// Extended attributes in a mount, as `cp -a`, `rsync -X` and tagging tools use them: set, read,
/// listed and removed with the kernel's errors, committed, and seen by another mount.
@Suite(.timeLimit(.minutes(5)), .ownThread) struct ExtendedAttributeTests {
    @Test func attributesRoundTripThroughACommitWithTheKernelsErrors() throws {
        let volume = try MountedVolume("silo-xattr")
        defer { volume.close() }
        let (directory, silo, mountPoint, other) = (volume.directory, volume.silo, volume.mountPoint, volume.other)
        try directory.write("base.txt", "committed before")
        #expect(try silo.run(["volume", "put", "v", directory.file("base.txt"), "/base.txt"]).status == 0)
        #expect(try volume.mount(at: mountPoint, "--xattrs"))

        let (status, said) = try runPython(
            """
            import errno, os, sys
            root = sys.argv[1]
            new = os.path.join(root, "new.txt"); open(new, "w").write("n")
            base = os.path.join(root, "base.txt")
            os.mkdir(os.path.join(root, "dir"))
            os.setxattr(new, "user.tag", b"checkpoint")
            os.setxattr(base, "user.origin", b"s3://bucket/key")
            os.setxattr(os.path.join(root, "dir"), "user.kind", b"dataset")
            os.setxattr(new, "trusted.note", b"root only")
            print(os.getxattr(new, "user.tag").decode(), sorted(os.listxattr(new)))
            def errors(call):
                try:
                    call(); return "ok"
                except OSError as error:
                    return errno.errorcode[error.errno]
            print(errors(lambda: os.setxattr(new, "user.tag", b"x", os.XATTR_CREATE)),
                  errors(lambda: os.setxattr(new, "user.other", b"x", os.XATTR_REPLACE)),
                  errors(lambda: os.getxattr(new, "user.missing")),
                  errors(lambda: os.removexattr(new, "user.missing")),
                  errors(lambda: os.setxattr(new, "user.big", b"x" * 5000)),
                  errors(lambda: os.setxattr(new, "user." + "n" * 300, b"x")))
            os.setxattr(new, "user.gone", b"soon"); os.removexattr(new, "user.gone")
            print(open(base).read())
            """, [mountPoint])
        #expect(status == 0, "\(said)")
        #expect(said == "checkpoint ['trusted.note', 'user.tag']\nEEXIST ENODATA ENODATA ENODATA ENOSPC ERANGE\ncommitted before\n")

        #expect(try silo.run(["volume", "commit", mountPoint]).status == 0)
        #expect(try volume.mount(at: other, "--read-only", "--xattrs"))
        let (_, seen) = try runPython(
            """
            import os, sys
            root = sys.argv[1]
            for name in ["new.txt", "base.txt", "dir"]:
                path = os.path.join(root, name)
                print(name, {key: os.getxattr(path, key).decode() for key in sorted(os.listxattr(path))})
            print(open(os.path.join(root, "base.txt")).read())
            """, [other])
        #expect(seen == """
            new.txt {'trusted.note': 'root only', 'user.tag': 'checkpoint'}
            base.txt {'user.origin': 's3://bucket/key'}
            dir {'user.kind': 'dataset'}
            committed before

            """)
    }

    @Test func aContainerRunWithTheFlagCommitsItsAttributes() throws {
        let directory = try TemporaryDirectory("silo-xattr-run")
        defer { directory.remove() }
        let silo = SiloBinary(home: directory.file("home"))
        let data = directory.file("data")
        let run = try silo.run([
            "run", "--xattrs", "-v", "tags:\(data)", "--", "python3", "-c",
            "import os, sys; p = sys.argv[1] + '/f'; open(p, 'w').write('f'); os.setxattr(p, 'user.kind', b'weights'); "
                + "sys.exit(os.system('silo volume commit ' + sys.argv[1]))",
            data,
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let listed = try silo.run(["volume", "ls", "tags", "/", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        #expect(rows.first?["xattrs"] as? [String] == ["user.kind"], "\(listed.stdout)")
    }

    @Test(arguments: Store.allCases) func putAndGetCarryExtendedAttributes(_ store: Store) throws {
        let directory = try TemporaryDirectory("silo-xattr-put")
        defer { directory.remove() }
        let (silo, server) = try store.binary(home: directory.file("home"), serverData: directory.file("server"))
        defer { server?.stop() }
        try directory.write("tree/model.bin", "weights")
        try directory.write("tree/run/log.txt", "log")
        let tagged = try runPython(
            """
            import os, sys
            os.setxattr(sys.argv[1] + "/model.bin", "user.sha", b"abc123")
            os.setxattr(sys.argv[1] + "/run", "user.kind", b"checkpoint")
            """, [directory.file("tree")])
        #expect(tagged.status == 0, "\(tagged.output)")
        #expect(try silo.run(["volume", "create", "v"]).status == 0)
        #expect(try silo.run(["volume", "put", "v", directory.file("tree"), "/tree"]).status == 0)
        let listed = try silo.run(["volume", "ls", "v", "/tree", "--json"])
        #expect(listed.stdout.contains("user.sha"), "\(listed.stdout)")
        #expect(try silo.run(["volume", "get", "v", "/tree", directory.file("back")]).status == 0)
        let read = try runPython(
            """
            import os, sys
            print(os.getxattr(sys.argv[1] + "/model.bin", "user.sha").decode(), os.getxattr(sys.argv[1] + "/run", "user.kind").decode())
            """, [directory.file("back")])
        #expect(read.output == "abc123 checkpoint\n")
    }

    /// Without `--xattrs` a mount answers as a file system without them, so the kernel never asks
    /// for `security.capability` before writes.
    @Test func withoutTheFlagAMountHasNoExtendedAttributes() throws {
        let volume = try MountedVolume("silo-xattr-off")
        defer { volume.close() }
        let mountPoint = volume.mountPoint
        #expect(try volume.mount(at: mountPoint))
        let (status, said) = try runPython(
            """
            import errno, os, sys
            path = os.path.join(sys.argv[1], "f"); open(path, "w").write("f")
            try:
                os.setxattr(path, "user.tag", b"x")
            except OSError as error:
                print(errno.errorcode[error.errno])
            """, [mountPoint])
        // EOPNOTSUPP, which Linux also names ENOTSUP.
        #expect(status == 0 && ["EOPNOTSUPP\n", "ENOTSUP\n"].contains(said), "\(said)")
    }
}
