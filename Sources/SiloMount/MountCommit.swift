import Foundation
import SiloClient
import SiloCore
import SiloFUSE

/// What a commit from a mount made.
public struct MountCommit: Sendable {
    public var result: CommitResult
    /// The changed paths it carried.
    public var changedPaths: Int
}

extension VolumeFileSystem {
    /// Commits this mount's uncommitted changes as one new version of the volume and returns it with
    /// the number of changed paths it carried, or nil when there is nothing to commit.
    ///
    /// Only the changed paths are read: new and rewritten files are hashed and their missing blocks
    /// uploaded; renamed base files travel as references to the blocks they already have. The mount
    /// stays usable throughout, and files open for writing are taken as written so far. The commit
    /// applies on top of the volume's latest version (last writer wins per path); this mount's view
    /// does not change: other writers' commits show only after a reload.
    public func commit(author: String) throws -> MountCommit? {
        guard let overlay else {
            throw SiloError(.invalidArgument, "this mount is read-only; there is nothing to commit")
        }
        // One commit at a time (a background commit and `silo volume commit` may meet).
        commitLock.lock()
        defer { commitLock.unlock() }
        let changed = overlay.dirtyItems()
        guard !changed.isEmpty else { return nil }
        let locals = changed.compactMap { _, item -> String? in
            if case .file(let local) = item.kind { return local }
            return nil
        }
        let service = self.service
        let uploaded = try Bridge.run { try await Uploader(service: service, workers: 2).uploadContents(of: locals) }
        var changes: [Change] = []
        var carried: [(VolumePath, Overlay.Item)] = []
        var files: [VolumePath: Overlay.CommittedFile] = [:]
        for (path, item) in changed {
            if item.replaces { changes.append(.removeIfPresent(path)) }
            switch item.kind {
            case .deleted:
                changes.append(.removeIfPresent(path))
            case .directory:
                changes.append(.makeDirectory(path, mode: item.mode, mtimeNanoseconds: item.mtime))
            case .symlink(let target):
                changes.append(.symlink(path, target: target, mtimeNanoseconds: item.mtime))
            case .file(let local):
                guard let file = uploaded[local] else { throw FUSEError.io }
                let committed = Overlay.CommittedFile(
                    content: file.content, mode: item.mode, mtime: overlay.modificationTime(of: local) ?? item.mtime
                )
                // A file kept open for writing stays uncommitted (writes may pass it by unseen): if
                // it is as this mount last committed it, there is nothing new to send.
                if overlay.lastCommitted(path) == committed {
                    carried.append((path, item))
                    continue
                }
                files[path] = committed
                changes.append(.put(path, FilePut(content: file.content, size: file.size, mode: item.mode, mtimeNanoseconds: committed.mtime)))
            case .moved(let entry):
                guard let content = entry.content else { throw FUSEError.io }
                changes.append(.put(path, FilePut(content: content, size: entry.size, mode: item.mode, mtimeNanoseconds: item.mtime)))
            }
        }
        guard !changes.isEmpty else {
            overlay.markCommitted(carried)
            return nil
        }
        let (volume, options) = (self.volume, CommitOptions(author: author, commitID: UUID().uuidString))
        let changeset = Changeset(changes)
        let result = try Bridge.run { try await service.commit(changeset, to: volume, options: options) }
        overlay.markCommitted(changed, files: files)
        return MountCommit(result: result, changedPaths: changed.count - carried.count)
    }
}
