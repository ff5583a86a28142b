import Foundation
import SiloClient
import SiloCore

#if canImport(Glibc)
import Glibc
#endif

/// Uncommitted changes a mount left behind when its process died, found in its runtime directory
/// (`$SILO_HOME/mounts/ID/`), and what can be done with them: commit them to the volume, or discard.
public struct AbandonedChanges: Sendable {
    /// The runtime directory's name, which `silo volume recover ID` takes.
    public var id: String
    public var directory: String
    /// From the journal: the volume, the version the mount showed, when it last wrote, and how many
    /// paths had changed. Nil when the mount died before it wrote a journal.
    public var volume: String?
    public var base: Int64?
    public var savedAtMilliseconds: Int64?
    public var changedPaths: Int
    /// Local data files there, journaled or not.
    public var dataFiles: Int

    /// The runtime directories under `runtime` whose mount process is gone and that hold changes.
    public static func find(under runtime: String) -> [AbandonedChanges] {
        var found: [AbandonedChanges] = []
        for id in (try? FileManager.default.contentsOfDirectory(atPath: runtime))?.sorted() ?? [] {
            let directory = runtime + "/" + id
            guard !isRunning(directory) else { continue }
            let scratch = directory + "/scratch"
            let data = (try? FileManager.default.contentsOfDirectory(atPath: scratch + "/data"))?.count ?? 0
            let journal = try? Overlay.readJournal(scratch: scratch)
            let changed = journal?.items.count ?? 0
            guard changed > 0 || data > 0 else { continue }
            found.append(
                AbandonedChanges(
                    id: id, directory: directory, volume: journal?.volume, base: journal?.base,
                    savedAtMilliseconds: journal?.savedAtMilliseconds, changedPaths: changed, dataFiles: data
                )
            )
        }
        return found
    }

    /// Whether the process that made `directory` still runs: its name starts with that process's id,
    /// and a live mount holds its record's process id.
    static func isRunning(_ directory: String) -> Bool {
        let name = String(directory.split(separator: "/").last ?? "")
        guard let pid = Int32(name.split(separator: "-").first ?? "") else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// Commits the journaled changes on top of the volume's latest version (last writer wins per
    /// path, as any commit) and removes the directory; returns the commit, nil when nothing needed one.
    public func commit(service: any VolumeService, author: String) async throws -> MountCommit? {
        let journal = try Overlay.readJournal(scratch: directory + "/scratch")
        let fileSystem = try VolumeFileSystem(
            service: service, volume: try VolumeName(journal.volume), version: Version(journal.base), scratch: directory + "/scratch"
        )
        try fileSystem.overlay!.restore(journal)
        let result = try await fileSystem.commit(author: author)
        discard()
        return result
    }

    /// Removes the directory and everything in it.
    public func discard() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}

extension VolumeFileSystem {
    /// Writes the journal of uncommitted changes, if they changed since it was last written, so that
    /// they can be recovered should this process die.
    public func saveJournal() throws {
        guard let overlay else { return }
        _ = try journalLock.withLock {
            try overlay.saveJournal(volume: volume, base: version, ifChangedSince: &journaled)
        }
    }
}
