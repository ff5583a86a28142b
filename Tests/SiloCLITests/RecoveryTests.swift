import Foundation
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A mount killed before it committed leaves its changes journaled: `silo volume recover` lists them,
/// commits them to the volume, or discards them; the next mount of that volume says they are there.
// The limit counts the wait for a thread of its own behind long process-driving tests, too.
@Suite(.timeLimit(.minutes(10)), .ownThread) struct RecoveryTests {
    typealias Setup = MountTests.Setup

    struct Listed: Decodable {
        var id: String
        var volume: String?
        var changedPaths: Int
    }

    static func listed(_ setup: Setup) throws -> [Listed] {
        try JSONDecoder().decode([Listed].self, from: Data(try setup.ok("volume", "recover", "--json").stdout.utf8))
    }

    /// Waits until the mount has journaled a change to `name`, as it does about once a second.
    static func waitForJournal(_ setup: Setup, naming name: String) throws {
        let mounts = setup.directory.path + "/home/mounts"
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            for id in (try? FileManager.default.contentsOfDirectory(atPath: mounts)) ?? [] {
                if let text = try? String(contentsOfFile: "\(mounts)/\(id)/scratch/journal.json", encoding: .utf8), text.contains(name) {
                    return
                }
            }
            usleep(20_000)  // polling a file another process writes; the loop's condition is the synchronisation
        }
        Issue.record("the mount never journaled \(name)")
    }

    static func kill(_ mount: Process) {
        Glibc.kill(mount.processIdentifier, SIGKILL)
        mount.waitUntilExit()
    }

    @Test(arguments: Store.allCases) func changesOfAKilledMountAreRecoveredOrDiscarded(_ store: Store) throws {
        let setup = try Setup(store)
        _ = try setup.ok("volume", "create", "v")
        _ = try setup.ok("volume", "put", "v", try setup.directory.write("a.txt", "first"), "/a.txt")

        let (mount, root) = try setup.mount("v", at: "m")
        let big = pseudoRandomBytes(count: 3 * 1024 * 1024 + 11, seed: 91)
        try Data(big).write(to: URL(fileURLWithPath: root + "/big.bin"))
        let handle = try #require(FileHandle(forUpdatingAtPath: root + "/a.txt"))
        handle.seekToEndOfFile()
        handle.write(Data(" and more".utf8))
        try handle.close()
        try FileManager.default.createDirectory(atPath: root + "/d", withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: root + "/d/link", withDestinationPath: "../a.txt")
        try Self.waitForJournal(setup, naming: "link")
        Self.kill(mount)

        let found = try Self.listed(setup)
        #expect(found.count == 1 && found.first?.volume == "v" && found.first?.changedPaths == 4, "\(found)")
        #expect(try setup.ok("volume", "history", "v", "--json").stdout.components(separatedBy: "\"version\"").count == 3)

        // The next mount of the volume says so.
        let point = setup.directory.file("again")
        try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true)
        let again = try setup.ok("mount", "v", point)
        #expect((again.stdout + again.stderr).contains("silo volume recover \(found[0].id) --commit"))
        _ = try setup.ok("umount", point)

        let committed = try setup.ok("volume", "recover", found[0].id, "--commit")
        #expect(committed.stdout.contains("committed 4 recovered change(s)"), "\(committed.stdout)")
        #expect(try setup.ok("volume", "get", "v", "/a.txt", "-").stdout == "first and more")
        _ = try setup.ok("volume", "get", "v", "/big.bin", setup.directory.file("big.back"))
        #expect(FileManager.default.contents(atPath: setup.directory.file("big.back")) == Data(big))
        #expect(try setup.ok("volume", "ls", "v", "/d", "--json").stdout.contains("link"))
        #expect(try Self.listed(setup).isEmpty)

        // Discarded, they are gone and the volume is as it was.
        let (other, otherRoot) = try setup.mount("v", at: "n")
        try Data("never".utf8).write(to: URL(fileURLWithPath: otherRoot + "/lost.txt"))
        try Self.waitForJournal(setup, naming: "lost.txt")
        Self.kill(other)
        let left = try #require(try Self.listed(setup).first)
        let versions = try setup.ok("volume", "history", "v", "--json").stdout
        _ = try setup.ok("volume", "recover", left.id, "--discard")
        #expect(try Self.listed(setup).isEmpty)
        #expect(try setup.ok("volume", "history", "v", "--json").stdout == versions)
        #expect(try setup.silo.run(["volume", "ls", "v", "/lost.txt"]).status == 3)
    }
}
