import Foundation
import SiloClient
import SiloCore
import SiloStore

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
    public func commit(author: String) async throws -> MountCommit? {
        guard let overlay else {
            throw SiloError(.invalidArgument, "this mount is read-only; there is nothing to commit")
        }
        guard kind == .snapshot else {
            throw SiloError(
                .invalidArgument,
                "volume '\(volume)' is shared: every close, fsync, rename, unlink and mkdir in its mounts is committed as it happens; there is nothing to commit"
            )
        }
        return try await commits.withLock { try await commit(overlay, author: author) }
    }

    /// Commits the uncommitted changes at and beneath `roots` (all of them when nil), after `first`
    /// (preconditions, removals that must find their paths).
    func commit(_ overlay: Overlay, author: String, roots: [VolumePath]? = nil, first: [Change] = []) async throws -> MountCommit? {
        var changed = overlay.dirtyItems()
        if let roots { changed = changed.filter { path, _ in roots.contains { path.isWithin($0) } } }
        // Preconditions alone change nothing: no version for them.
        guard !changed.isEmpty || first.contains(where: Self.changes) else { return nil }
        // Local files to send: changed files', and those of linked files whose last changed name is
        // being removed (the file is written through it first, see `release`).
        let locals = Set(changed.compactMap { _, item -> String? in
            var state = overlay.resolving(item)
            if let file = item.released, let released = overlay.linkedFile(file)?.state { state = released }
            if case .file(let local) = state.kind { return local }
            return nil
        })
        let uploaded = try await Uploader(service: service, workers: 2).uploadContents(of: locals.sorted())
        var builder = ChangesetBuilder()
        for change in first { builder.add(change) }
        var carried: [(VolumePath, Overlay.Item)] = []
        var files: [VolumePath: Overlay.CommittedFile] = [:]
        for (path, name) in changed {
            // A name of a linked file commits the file's state with its id; the store gives it to every name.
            let item = overlay.resolving(name)
            var linked: FileID?
            if case .linked(let id) = name.kind { linked = id }
            var file: FilePut?
            if case .file(let local) = item.kind {
                guard let uploaded = uploaded[local] else { throw SiloError(.io, "the local file of \(path) was not uploaded") }
                let committed = Overlay.CommittedFile(
                    content: uploaded.content, mode: item.mode, mtime: overlay.modificationTime(of: local) ?? item.mtime, owner: item.owner
                )
                // A file kept open for writing stays uncommitted (writes may pass it by unseen): if
                // it is as this mount last committed it, there is nothing new to send.
                if overlay.lastCommitted(path) == committed {
                    carried.append((path, item))
                    continue
                }
                files[path] = committed
                file = FilePut(
                    content: uploaded.content, size: uploaded.size, mode: item.mode, mtimeNanoseconds: committed.mtime, owner: item.owner,
                    fileID: linked)
            }
            // What the volume held there goes first (a file where a directory was, say).
            if item.replaces { builder.remove(path) }
            switch item.kind {
            case .deleted:
                if let file = name.released, let state = overlay.linkedFile(file)?.state {
                    // The file's changes go to its other names through this one before it goes.
                    try Self.putLinked(file, state, at: path, uploaded: uploaded, into: &builder)
                }
                builder.remove(path)
            case .directory:
                // Made if missing; an existing directory keeps what it holds and takes the attributes.
                builder.directory(path, mode: item.mode, mtimeNanoseconds: item.mtime, owner: item.owner)
                builder.attributes(path, Self.attributes(of: item))
            case .symlink(let target):
                builder.symlink(path, target: target, mtimeNanoseconds: item.mtime, owner: item.owner)
                builder.extendedAttributes(path, item.extendedAttributes)
            case .special(let kind, let device?) where kind.isDevice:
                builder.device(path, kind: kind, number: device, mode: item.mode, mtimeNanoseconds: item.mtime, owner: item.owner)
                builder.extendedAttributes(path, item.extendedAttributes)
            case .special(.fifo, _):
                builder.fifo(path, mode: item.mode, mtimeNanoseconds: item.mtime, owner: item.owner)
                builder.extendedAttributes(path, item.extendedAttributes)
            case .special: break  // a socket lives in this mount only
            case .linked: break  // resolved above
            case .file:
                builder.file(path, file!)
                if linked != nil {
                    builder.attributes(path, Self.attributes(of: item))
                } else {
                    builder.extendedAttributes(path, item.extendedAttributes)
                }
            case .moved where linked != nil:
                try Self.putLinked(linked!, item, at: path, uploaded: uploaded, into: &builder)
            case .moved(let entry) where entry.path == path && !item.replaces:
                // New attributes of a file whose content this mount did not touch: applied to whatever
                // the file holds when the commit lands, so a newer commit's content stays.
                builder.attributes(path, Self.attributes(of: item))
            case .moved(var entry):
                entry.owner = item.owner
                entry.extendedAttributes = item.extendedAttributes
                try builder.copy(entry, to: path, mode: item.mode, mtimeNanoseconds: item.mtime)
            }
        }
        guard builder.changeset.changes.contains(where: Self.changes) else {
            overlay.markCommitted(carried)
            return nil
        }
        let (volume, options) = (self.volume, CommitOptions(author: author, commitID: UUID().uuidString))
        let result = try await service.commit(builder.changeset, to: volume, options: options)
        overlay.markCommitted(changed, files: files)
        return MountCommit(result: result, changedPaths: changed.count - carried.count)
    }

    /// Whether `change` changes the volume (a `require` only checks it).
    private static func changes(_ change: Change) -> Bool {
        if case .require = change { return false }
        return true
    }

    /// Writes linked file `file`, as `state` holds it, at `path` (a name of it being made, or one
    /// about to be removed that carries its changes): the store gives what it carries to the file's
    /// other names. Bytes of a local file are new; base content joins the file as the volume holds
    /// it when the commit lands, and is put only if the volume holds it under no name by then.
    private static func putLinked(
        _ file: FileID, _ state: Overlay.Item, at path: VolumePath, uploaded: [String: (content: FileContent, size: Int64)],
        into builder: inout ChangesetBuilder
    ) throws {
        switch state.kind {
        case .file(let local):
            guard let uploaded = uploaded[local] else { throw SiloError(.io, "the local file of \(path) was not uploaded") }
            builder.file(path, FilePut(
                content: uploaded.content, size: uploaded.size, mode: state.mode, mtimeNanoseconds: state.mtime, owner: state.owner, fileID: file))
        case .moved(let entry):
            guard let content = entry.content else { throw SiloError(.storage, "\(path) has no recorded content") }
            builder.link(path, FilePut(content: content, size: entry.size, mode: state.mode, mtimeNanoseconds: state.mtime, owner: state.owner, fileID: file))
        default:
            return
        }
        builder.attributes(path, Self.attributes(of: state))
    }

    /// Every attribute an item sets, extended ones whole.
    static func attributes(of item: Overlay.Item) -> AttributeChanges {
        AttributeChanges(mode: item.mode, mtimeNanoseconds: item.mtime, owner: item.owner, extendedAttributes: item.extendedAttributes)
    }
}
