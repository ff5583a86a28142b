import Foundation
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Named pipes and Unix sockets in a mount, as servers and notebooks use them in their working
/// directories: processes meet through them; a fifo is committed, a socket never is.
@Suite(.timeLimit(.minutes(5)), .ownThread) struct SpecialFileTests {
    func kind(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }

    @Test func fifosAndSocketsWorkInAMountAndOnlyTheFifoIsCommitted() throws {
        let volume = try MountedVolume("silo-special")
        defer { volume.close() }
        let (directory, silo, mountPoint, other) = (volume.directory, volume.silo, volume.mountPoint, volume.other)
        #expect(try volume.mount(at: mountPoint))

        // Two processes meet through a fifo and through a Unix socket, both made in the mount.
        let (status, said) = try runPython(
            """
            import os, socket, sys, threading
            root = sys.argv[1]
            fifo = os.path.join(root, "jobs.fifo")
            os.mkfifo(fifo, 0o640)
            pid = os.fork()
            if pid == 0:
                with open(fifo, "w") as w: w.write("through the fifo")
                os._exit(0)
            with open(fifo) as r: print(r.read())
            os.waitpid(pid, 0)
            path = os.path.join(root, "kernel.sock")
            server = socket.socket(socket.AF_UNIX); server.bind(path); server.listen(1)
            def answer():
                connection, _ = server.accept(); connection.sendall(connection.recv(100).upper()); connection.close()
            thread = threading.Thread(target=answer); thread.start()
            client = socket.socket(socket.AF_UNIX); client.connect(path); client.sendall(b"through the socket")
            print(client.recv(100).decode()); thread.join()
            # A device node is made (by root) and shown, but a nodev mount opens none.
            null = os.path.join(root, "null")
            os.mknod(null, 0o666 | 0o020000, os.makedev(1, 3))
            info = os.stat(null)
            print(oct(info.st_mode), os.major(info.st_rdev), os.minor(info.st_rdev))
            try: open(null, "rb")
            except PermissionError: print("nodev")
            """, [mountPoint])
        #expect(status == 0, "\(said)")
        #expect(said == "through the fifo\nTHROUGH THE SOCKET\n0o20644 1 3\nnodev\n")
        #expect(kind(mountPoint + "/jobs.fifo") == S_IFIFO)
        #expect(kind(mountPoint + "/kernel.sock") == S_IFSOCK)

        #expect(try silo.run(["volume", "commit", mountPoint]).status == 0)
        let listed = try silo.run(["volume", "ls", "v", "/", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        #expect(rows.map { "\($0["name"]!):\($0["kind"]!):\($0["mode"]!)" } == ["jobs.fifo:fifo:640", "null:char-device:644"])
        #expect(rows.last?["major"] as? Int == 1 && rows.last?["minor"] as? Int == 3)
        #expect(try volume.mount(at: other, "--read-only"))
        #expect(kind(other + "/jobs.fifo") == S_IFIFO)
        #expect(kind(other + "/kernel.sock") == nil)

        // get makes the device node again (as root).
        #expect(try silo.run(["volume", "get", "v", "/null", directory.file("null")]).status == 0)
        var node = stat()
        #expect(lstat(directory.file("null"), &node) == 0 && node.st_mode & S_IFMT == S_IFCHR && node.st_rdev == 1 << 8 | 3)  // makedev(1, 3)
        // get makes the fifo again; put takes a local one.
        #expect(try silo.run(["volume", "get", "v", "/jobs.fifo", directory.file("back.fifo")]).status == 0)
        #expect(kind(directory.file("back.fifo")) == S_IFIFO)
        #expect(mkfifo(directory.file("local.fifo"), 0o600) == 0)
        #expect(try silo.run(["volume", "put", "v", directory.file("local.fifo"), "/local.fifo"]).status == 0)
        let entry = try silo.run(["volume", "ls", "v", "/local.fifo", "--json"])
        let parsed = try JSONSerialization.jsonObject(with: Data(entry.stdout.utf8))
        let kinds = ((parsed as? [[String: Any]]) ?? [(parsed as? [String: Any]) ?? [:]]).compactMap { $0["kind"] as? String }
        #expect(kinds == ["fifo"], "\(entry.stdout)")
    }
}
