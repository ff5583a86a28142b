import Foundation
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The POSIX comparison suite (`Tests/posix/posix_compare.py`): the same cases on ext4 and in a mount,
/// as root and as two ordinary users; every difference must be one `Tests/posix/allowed.json` lists
/// with its reason (`docs/semantics.md` gives the counts).
@Suite(.timeLimit(.minutes(15)), .ownThread) struct PosixComparisonTests {
    static let suite = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("posix")
    static let users: [(String, [String])] = [
        ("root", []),
        ("2001", ["/usr/bin/setpriv", "--reuid=2001", "--regid=2001", "--clear-groups", "--"]),
        ("2002", ["/usr/bin/setpriv", "--reuid=2002", "--regid=2002", "--clear-groups", "--"]),
    ]

    struct Counts: Decodable {
        var same: Int
        var allowed: Int
        var unexpected: Int
    }

    /// Runs the suite in `directory` as `user`, its JSON written to `output`.
    func run(in directory: String, as user: [String], into output: String) throws {
        let script = Self.suite.appendingPathComponent("posix_compare.py").path
        let command = "exec /usr/bin/python3 \"$0\" run \"$1\" > \"$2\""
        let ran = try runProgram(user.first ?? "/bin/sh", Array(user.dropFirst()) + (user.isEmpty ? [] : ["/bin/sh"]) + ["-c", command, script, directory, output])
        #expect(ran.status == 0, "the suite did not run in \(directory): \(ran.output)")
    }

    func compare(_ reference: String, _ mounted: String) throws -> (Counts, String) {
        let script = Self.suite.appendingPathComponent("posix_compare.py").path
        let allowed = Self.suite.appendingPathComponent("allowed.json").path
        let counts = try runProgram("/usr/bin/python3", [script, "compare", reference, mounted, "--allowed", allowed, "--json"])
        let text = try runProgram("/usr/bin/python3", [script, "compare", reference, mounted, "--allowed", allowed])
        let json = counts.output.firstIndex(of: "{").map { String(counts.output[$0...]) } ?? counts.output
        return (try JSONDecoder().decode(Counts.self, from: Data(json.utf8)), text.output)
    }

    /// An ext4 directory to compare with: the temporary directory's disk if it is ext4, else a small
    /// ext4 image mounted through a loop device for the test.
    func ext4Directory(in directory: TemporaryDirectory, unmount: inout String?) throws -> String {
        let reference = directory.file("ext4")
        try FileManager.default.createDirectory(atPath: reference, withIntermediateDirectories: true)
        // ext2, ext3 and ext4 share one magic number; a disk here is ext4.
        if try runProgram("/usr/bin/stat", ["-f", "-c", "%t", reference]).output == "ef53\n" { return reference }
        let image = directory.file("ext4.img")
        let made = try runProgram("/sbin/mkfs.ext4", ["-q", "-F", image, "256M"])
        try #require(made.status == 0, "no ext4 disk to compare with and mkfs.ext4 failed: \(made.output)")
        let mounted = try runProgram("/bin/mount", ["-o", "loop", image, reference])
        try #require(mounted.status == 0, "no ext4 disk to compare with and a loop mount failed: \(mounted.output)")
        unmount = reference
        return reference
    }

    @Test func aMountBehavesAsExt4ExceptWhereListed() throws {
        let volume = try MountedVolume("silo-posix", openToOthers: true)
        var loop: String?
        defer {
            if let loop { _ = try? runProgram("/bin/umount", [loop]) }
            volume.close()
        }
        let reference = try ext4Directory(in: volume.directory, unmount: &loop)
        #expect(try volume.mount(at: volume.mountPoint, "--xattrs"))
        let results = volume.directory.file("results")
        try FileManager.default.createDirectory(atPath: results, withIntermediateDirectories: true)
        #expect(chmod(results, 0o777) == 0)

        var total = Counts(same: 0, allowed: 0, unexpected: 0)
        for (name, user) in Self.users {
            // Each user works in a directory open to all, on both sides.
            for side in [reference, volume.mountPoint] {
                #expect(mkdir("\(side)/\(name)", 0o777) == 0 && chmod("\(side)/\(name)", 0o777) == 0)
            }
            try run(in: "\(reference)/\(name)", as: user, into: "\(results)/ext4-\(name).json")
            try run(in: "\(volume.mountPoint)/\(name)", as: user, into: "\(results)/silo-\(name).json")
            let (counts, report) = try compare("\(results)/ext4-\(name).json", "\(results)/silo-\(name).json")
            #expect(counts.unexpected == 0, "as \(name):\n\(report)")
            #expect(counts.same > 500, "as \(name): only \(counts.same) cases agreed")
            total.same += counts.same
            total.allowed += counts.allowed
            total.unexpected += counts.unexpected
        }
        print("POSIX comparison with ext4: \(total.same) same, \(total.allowed) allowed, \(total.unexpected) unexpected")
    }

    /// The comparison finds differences: tmpfs differs from ext4 in cases the suite holds.
    @Test func theComparisonFindsADifferentFileSystem() throws {
        let directory = try TemporaryDirectory("silo-posix-tmpfs")
        var loop: String?
        let tmpfs = directory.file("tmpfs")
        defer {
            _ = try? runProgram("/bin/umount", [tmpfs])
            if let loop { _ = try? runProgram("/bin/umount", [loop]) }
            directory.remove()
        }
        let reference = try ext4Directory(in: directory, unmount: &loop)
        try FileManager.default.createDirectory(atPath: tmpfs, withIntermediateDirectories: true)
        #expect(try runProgram("/bin/mount", ["-t", "tmpfs", "-o", "size=256m", "tmpfs", tmpfs]).status == 0)
        for path in [reference, tmpfs] { #expect(chmod(path, 0o777) == 0) }
        try run(in: reference, as: [], into: directory.file("ext4.json"))
        try run(in: tmpfs, as: [], into: directory.file("tmpfs.json"))
        let (counts, _) = try compare(directory.file("ext4.json"), directory.file("tmpfs.json"))
        #expect(counts.unexpected > 0)
    }
}
