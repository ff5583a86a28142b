import Foundation
import SiloCore
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Data at rest belongs to its owner: a server's data directory, `SILO_HOME` and the content cache
/// are 0700, what is in them 0600 or 0400, and another local user reads none of it.
@Suite(.timeLimit(.minutes(10)), .ownThread) struct PrivacyTests {
    static func mode(_ path: String) -> Int {
        var info = stat()
        guard lstat(path, &info) == 0 else { return -1 }
        return Int(info.st_mode & 0o7777)
    }

    /// Every file and directory beneath `root` (root included) whose mode lets others in.
    static func exposed(under root: String) -> [String] {
        var found: [String] = []
        if mode(root) & 0o077 != 0 { found.append(root) }
        for item in FileManager.default.enumerator(atPath: root)?.compactMap({ $0 as? String }) ?? [] {
            let path = root + "/" + item
            if mode(path) & 0o077 != 0 { found.append("\(path) \(String(mode(path), radix: 8))") }
        }
        return found
    }

    /// Whether user `nobody` can read `path`.
    static func nobodyCanRead(_ path: String) throws -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", "/bin/cat", path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    @Test func aServersDataIsItsOwnersAlone() throws {
        let directory = try TemporaryDirectory("silo-private")
        defer { directory.remove() }
        chmod(directory.path, 0o755)
        let data = directory.path + "/data"
        // A link planted where the server writes its admin token: it must be replaced, not followed.
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let victim = try directory.write("victim", "untouched")
        try FileManager.default.createSymbolicLink(atPath: data + "/admin-token", withDestinationPath: victim)

        let server = try SiloServerProcess(dataDirectory: data)
        defer { server.stop() }
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "untouched")
        #expect((try FileManager.default.attributesOfItem(atPath: data + "/admin-token"))[.type] as? FileAttributeType == .typeRegular)
        #expect(Self.mode(data + "/admin-token") == 0o600)
        #expect(server.adminToken.hasPrefix("silo_"))

        let silo = SiloBinary(home: directory.path + "/home").using(server)
        try directory.write("f.bin", pseudoRandomBytes(count: 100_000, seed: 3))
        #expect(try silo.run(["volume", "create", "v"]).status == 0)
        #expect(try silo.run(["volume", "put", "v", directory.file("f.bin")]).status == 0)
        #expect(Self.exposed(under: data) == [])
        #expect(try !Self.nobodyCanRead(data + "/metadata.sqlite"))
    }

    @Test func anEmbeddedStoreAndItsCacheAreTheirOwnersAlone() throws {
        let directory = try TemporaryDirectory("silo-private")
        defer { directory.remove() }
        chmod(directory.path, 0o755)
        let home = directory.path + "/home"
        // A SILO_HOME made loosely before (by hand, or an older silo) is tightened on first use.
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let silo = SiloBinary(home: home)
        try directory.write("f.bin", pseudoRandomBytes(count: 100_000, seed: 4))
        #expect(try silo.run(["volume", "create", "v"]).status == 0)
        #expect(try silo.run(["volume", "put", "v", directory.file("f.bin")]).status == 0)
        #expect(Self.exposed(under: home) == [])
        #expect(try !Self.nobodyCanRead(home + "/metadata.sqlite"))

        // A cache that belongs to another user is refused, not shared.
        let theirs = directory.path + "/theirs"
        try FileManager.default.createDirectory(atPath: theirs, withIntermediateDirectories: true)
        chown(theirs, 65534, 65534)
        try FileManager.default.createDirectory(atPath: directory.path + "/mnt", withIntermediateDirectories: true)
        let refused = try SiloBinary(home: home, environment: ["SILO_CACHE": theirs]).run(["mount", "v", directory.path + "/mnt", "--foreground"])
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("belongs to another user"))
    }
}

/// What the store's system calls leave durable, seen with strace on the real binary.
@Suite(.timeLimit(.minutes(10)), .ownThread) struct DurabilityTests {
    @Test func newBlockDirectoriesAreFsyncedIntoTheirParents() throws {
        let directory = try TemporaryDirectory("silo-durable")
        defer { directory.remove() }
        let home = directory.path + "/home"
        let silo = SiloBinary(home: home)
        #expect(try silo.run(["volume", "create", "v"]).status == 0)
        try directory.write("f.bin", pseudoRandomBytes(count: 100_000, seed: 5))
        let trace = directory.path + "/trace"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/strace")
        process.arguments = ["-f", "-qq", "-y", "-e", "trace=fsync,mkdir,mkdirat", "-o", trace, SiloBinary.path, "volume", "put", "v", directory.file("f.bin")]
        process.environment = ["SILO_HOME": home, "PATH": "/usr/bin:/bin"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").map(String.init)
        // With -y, strace names each fsynced descriptor's path: fsync(5</…/blocks>) = 0.
        let synced = Set(lines.compactMap { line -> String? in
            guard let open = line.range(of: "fsync("), let start = line[open.upperBound...].firstIndex(of: "<"),
                let end = line[start...].firstIndex(of: ">")
            else { return nil }
            return String(line[line.index(after: start)..<end])
        })
        let made = lines.compactMap { line -> String? in
            guard line.contains("mkdir"), line.hasSuffix("= 0"), let first = line.firstIndex(of: "\""),
                let last = line[line.index(after: first)...].firstIndex(of: "\"")
            else { return nil }
            return String(line[line.index(after: first)..<last]).replacingOccurrences(of: "//", with: "/")
        }.filter { $0.contains("/blocks/") }
        #expect(made.count == 2, "\(lines)")  // blocks/default and blocks/default/ab
        for created in made {
            let parent = String(created[..<created.lastIndex(of: "/")!])
            #expect(synced.contains(parent), "\(created) was made but \(parent) never fsynced: \(synced)")
            #expect(synced.contains(created), "\(created) never fsynced after its block was renamed into it")
        }
    }
}
