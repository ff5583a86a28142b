import Foundation
import SQLKit
import SiloCore

/// Applies one changeset inside a write transaction: the changes in order, on top of the latest version,
/// reading only the rows of the paths they touch (and of directories they remove).
struct CommitApplication {
    /// What a path is at this point of the commit.
    enum Slot {
        case absent
        /// The row current before this commit.
        case stored(Entry)
        /// A row this commit writes.
        case written(Entry)

        var entry: Entry? {
            switch self {
            case .absent: nil
            case .stored(let entry), .written(let entry): entry
            }
        }
    }

    let volume: SQLMetadataStore.VolumeRow
    let version: Version
    let now: Int64
    let db: any SQLDatabase

    /// Every path read or changed so far; a path missing here has not been looked up yet.
    private var slots: [VolumePath: Slot] = [:]
    /// Rows current before this commit that it retires, with their kinds (for the summary).
    private var retired: [VolumePath: EntryKind] = [:]
    /// Rows this commit writes, by path.
    private var written: [VolumePath: Entry] = [:]
    /// Files of several names this commit wrote, each as its last change left it: every other name of
    /// the file takes that at the end.
    private var files: [FileID: Entry] = [:]
    private var conflicts: [String] = []
    /// Paths whose `leaseOf` precondition failed: the writer's lease lapsed.
    private var lapsed: [String] = []

    init(volume: SQLMetadataStore.VolumeRow, version: Version, now: Int64, db: any SQLDatabase) {
        self.volume = volume
        self.version = version
        self.now = now
        self.db = db
    }

    mutating func run(_ changeset: Changeset) async throws {
        var paths = Set<VolumePath>()
        for change in changeset.changes {
            paths.insert(change.path)
            for ancestor in change.path.ancestors { paths.insert(ancestor) }
        }
        try await load(paths.filter { !$0.isRoot })
        for change in changeset.changes {
            try await apply(change)
        }
        try await shareLinkedFiles()
        guard lapsed.isEmpty else {
            let names = lapsed.map { "/" + $0 }
            throw SiloError(
                .conflict,
                "commit to volume '\(volume.info.name)' refused at \(names.joined(separator: ", ")): the writer's lock there lapsed "
                    + "(its lease ran out, so another holder may have written since); nothing was applied; take the lock again and redo the write",
                paths: names
            )
        }
        guard conflicts.isEmpty else {
            let names = conflicts.map { "/" + $0 }
            throw SiloError(
                .conflict,
                "commit to volume '\(volume.info.name)' conflicts at \(names.joined(separator: ", ")): a precondition did not hold; nothing was applied",
                paths: names
            )
        }
    }

    /// Looks up the current rows of `paths` in batches.
    private mutating func load(_ paths: Set<VolumePath>) async throws {
        for batch in Array(paths).chunked(SQLMetadataStore.batchSize) {
            let rows = try await db.raw(
                """
                SELECT \(unsafeRaw: SQLMetadataStore.entryColumnsWithoutData) FROM entries
                WHERE volume_id = \(bind: volume.id) AND removed_version = \(bind: SQLMetadataStore.live)
                  AND path IN (\(binds: batch.map(\.rawValue)))
                """
            ).all()
            for path in batch { slots[path] = .absent }
            for row in rows {
                let entry = try SQLMetadataStore.decodeEntry(row)
                slots[entry.path] = .stored(entry)
            }
        }
    }

    private func slot(_ path: VolumePath) -> Slot {
        if path.isRoot { return .stored(SQLMetadataStore.rootEntry(volume)) }
        return slots[path] ?? .absent
    }

    private mutating func apply(_ change: Change) async throws {
        switch change {
        case .put(let path, let file, let precondition):
            try await check(precondition, at: path)
            try requireReplaceable(path, by: "file")
            try createParents(of: path)
            set(path, Self.entry(path, file, version: version))
        case .link(let path, let file):
            try requireReplaceable(path, by: "link")
            try createParents(of: path)
            if let file = file.fileID, var shared = try await anyName(of: file) {
                shared.path = path
                shared.version = version
                set(path, shared)
            } else {
                set(path, Self.entry(path, file, version: version))
            }
        case .symlink(let path, let target, let mtime, let owner):
            try requireReplaceable(path, by: "symlink")
            try createParents(of: path)
            set(path, Entry(
                path: path, kind: .symlink, size: Int64(target.utf8.count), mode: 0o777, mtimeNanoseconds: mtime,
                version: version, symlinkTarget: target, owner: owner
            ))
        case .makeDirectory(let path, let mode, let mtime, let owner):
            if path.isRoot { return }
            switch slot(path).entry?.kind {
            case .directory?: return
            case _?:
                throw SiloError(.pathExists, "cannot create directory \(path): a \(slot(path).entry!.kind.rawValue) is there")
            case nil:
                try createParents(of: path)
                set(path, directoryEntry(path, mode: mode, mtime: mtime, owner: owner))
            }
        case .fifo(let path, let mode, let mtime, let owner):
            try requireReplaceable(path, by: "fifo")
            try createParents(of: path)
            set(path, Entry(path: path, kind: .fifo, size: 0, mode: mode & 0o7777, mtimeNanoseconds: mtime, version: version, owner: owner))
        case .require(let path, let precondition):
            try await check(precondition, at: path)
        case .device(let path, let kind, let number, let mode, let mtime, let owner):
            try requireReplaceable(path, by: "device node")
            try createParents(of: path)
            set(path, Entry(
                path: path, kind: kind, size: 0, mode: mode & 0o7777, mtimeNanoseconds: mtime, version: version, owner: owner, device: number))
        case .setAttributes(let path, let changes):
            guard !path.isRoot, var entry = try await currentWithContent(path) else { return }
            if let mode = changes.mode, entry.kind != .symlink { entry.mode = mode & 0o7777 }
            if let mtime = changes.mtimeNanoseconds { entry.mtimeNanoseconds = mtime }
            if let owner = changes.owner { entry.owner = owner }
            if let attributes = changes.extendedAttributes { entry.extendedAttributes = attributes }
            entry.version = version
            set(path, entry)
        case .removeIfPresent(let path):
            try await removeTree(path, recursive: true, ifAbsent: {})
        case .remove(let path, let recursive, let precondition):
            try await check(precondition, at: path)
            let name = volume.info.name
            try await removeTree(path, recursive: recursive) {
                if precondition != nil { return }  // already recorded as a conflict
                throw SiloError(.pathNotFound, "cannot remove \(path): it does not exist in volume '\(name)'")
            }
        }
    }

    private static func entry(_ path: VolumePath, _ file: FilePut, version: Version) -> Entry {
        Entry(
            path: path, kind: .file, size: file.size, mode: file.mode, mtimeNanoseconds: file.mtimeNanoseconds,
            version: version, content: file.content, owner: file.owner, fileID: file.fileID
        )
    }

    /// The file `file` under one of its names at this point of the commit, with its content; nil if
    /// the volume holds it under none.
    private mutating func anyName(of file: FileID) async throws -> Entry? {
        if let latest = files[file] { return latest }
        for name in try await storedNames(of: file) {
            if let entry = try await currentWithContent(name), entry.fileID == file { return entry }
        }
        return nil
    }

    /// The names the rows current before this commit give `file` (some of which this commit may have
    /// removed or replaced: look at their slots).
    private mutating func storedNames(of file: FileID) async throws -> [VolumePath] {
        let rows = try await db.raw(
            """
            SELECT \(unsafeRaw: SQLMetadataStore.entryColumnsWithoutData) FROM entries
            WHERE volume_id = \(bind: volume.id) AND file_id = \(bind: Int64(bitPattern: file.rawValue))
              AND removed_version = \(bind: SQLMetadataStore.live)
            """
        ).all()
        var names: [VolumePath] = []
        for row in rows {
            let entry = try SQLMetadataStore.decodeEntry(row)
            if slots[entry.path] == nil { slots[entry.path] = .stored(entry) }
            names.append(entry.path)
        }
        return names
    }

    /// Every name of each file of several names this commit wrote takes the file's last state: one
    /// file, whichever name its content or attributes came through (last writer wins per file).
    private mutating func shareLinkedFiles() async throws {
        for (file, state) in files.sorted(by: { $0.value.path < $1.value.path }) {
            let names = Set(try await storedNames(of: file)).union(written.compactMap { $0.value.fileID == file ? $0.key : nil })
            for name in names.sorted() where name != state.path {
                guard let current = slot(name).entry, current.kind == .file, current.fileID == file else { continue }
                var shared = state
                shared.path = name
                shared.version = version
                if current != shared { set(name, shared) }
            }
        }
    }

    /// Removes `path` and, for a directory, what it holds now (only when `recursive`, or if it is
    /// empty); runs `ifAbsent` when nothing is there.
    private mutating func removeTree(_ path: VolumePath, recursive: Bool, ifAbsent: () throws -> Void) async throws {
        guard !path.isRoot else {
            throw SiloError(.invalidArgument, "cannot remove the root of volume '\(volume.info.name)'; delete the volume instead")
        }
        guard let entry = slot(path).entry else {
            try ifAbsent()
            return
        }
        if entry.kind == .directory {
            let inside = try await descendants(of: path)
            if !inside.isEmpty && !recursive {
                throw SiloError(.directoryNotEmpty, "cannot remove \(path): the directory is not empty; remove it recursively (`silo volume rm -r`)")
            }
            for child in inside { remove(child) }
        }
        remove(path)
    }

    private mutating func check(_ precondition: Precondition?, at path: VolumePath) async throws {
        switch precondition {
        case nil:
            return
        case .absent:
            if slot(path).entry != nil { conflicts.append(path.rawValue) }
        case .atVersion(let expected):
            if slot(path).entry?.version != expected { conflicts.append(path.rawValue) }
        case .present:
            if slot(path).entry == nil { conflicts.append(path.rawValue) }
        case .leaseOf(let holder):
            // Lock calls and commits are write transactions: no lease lapses between this look and
            // the commit.
            let held = try await db.raw(
                """
                SELECT 1 AS held FROM lock_holders
                WHERE volume_id = \(bind: volume.id) AND holder = \(bind: holder) AND expires_at >= \(bind: now)
                """
            ).first()
            if held == nil { lapsed.append(path.rawValue) }
        }
    }

    private func requireReplaceable(_ path: VolumePath, by kind: String) throws {
        guard !path.isRoot else {
            throw SiloError(.isADirectory, "cannot write a \(kind) at the volume's root")
        }
        if slot(path).entry?.kind == .directory {
            throw SiloError(.isADirectory, "cannot write a \(kind) at \(path): it is a directory; remove the directory first")
        }
    }

    private mutating func createParents(of path: VolumePath) throws {
        for ancestor in path.ancestors {
            switch slot(ancestor).entry?.kind {
            case .directory?:
                continue
            case _?:
                throw SiloError(
                    .notADirectory,
                    "cannot write \(path): \(ancestor) is a \(slot(ancestor).entry!.kind.rawValue) in volume '\(volume.info.name)', not a directory"
                )
            case nil:
                set(ancestor, directoryEntry(ancestor, mode: 0o755, mtime: now * 1_000_000))
            }
        }
    }

    private func directoryEntry(_ path: VolumePath, mode: UInt32, mtime: Int64, owner: Owner? = nil) -> Entry {
        Entry(path: path, kind: .directory, size: 0, mode: mode, mtimeNanoseconds: mtime, version: version, owner: owner)
    }

    /// Every path beneath `path` as it stands at this point of the commit.
    private mutating func descendants(of path: VolumePath) async throws -> [VolumePath] {
        let (low, high) = SQLMetadataStore.descendantRange(of: path)
        let rows = try await db.raw(
            """
            SELECT \(unsafeRaw: SQLMetadataStore.entryColumnsWithoutData) FROM entries
            WHERE volume_id = \(bind: volume.id) AND removed_version = \(bind: SQLMetadataStore.live)
              AND path > \(bind: low) AND path < \(bind: high)
            """
        ).all()
        for row in rows {
            let entry = try SQLMetadataStore.decodeEntry(row)
            if slots[entry.path] == nil { slots[entry.path] = .stored(entry) }
        }
        return slots.compactMap { candidate, slot in
            slot.entry != nil && candidate != path && candidate.isWithin(path) ? candidate : nil
        }
    }

    /// What `path` holds at this point of the commit, with a small file's bytes (which lookups leave
    /// out), or nil.
    private func currentWithContent(_ path: VolumePath) async throws -> Entry? {
        guard let entry = slot(path).entry else { return nil }
        guard entry.kind == .file, entry.content == nil else { return entry }
        // Only a row current before this commit lacks its bytes: the one at the latest version.
        return try await SQLMetadataStore.entry(path, volume: volume, at: volume.info.latestVersion, on: db) ?? entry
    }

    private mutating func set(_ path: VolumePath, _ entry: Entry) {
        if case .stored(let old) = slot(path) { retired[path] = old.kind }
        if entry.kind == .file, let file = entry.fileID { files[file] = entry }
        written[path] = entry
        slots[path] = .written(entry)
    }

    private mutating func remove(_ path: VolumePath) {
        if case .stored(let old) = slot(path) { retired[path] = old.kind }
        written[path] = nil
        slots[path] = .absent
    }

    // MARK: Writing

    mutating func write(
        workspace: String, lengthsOfUnrecordedBlocks: @Sendable (Set<BlockHash>) async throws -> [BlockHash: Int]
    ) async throws {
        var hashes = Set<BlockHash>()
        for entry in written.values { hashes.formUnion(entry.content?.blockHashes ?? []) }
        if !hashes.isEmpty {
            let packed = hashes.map { Data($0.bytes) }
            // Claim the blocks from the garbage queue before checking they exist: collection runs under
            // the same write lock, so a block that exists now stays.
            for batch in packed.chunked(SQLMetadataStore.batchSize) {
                try await db.raw(
                    "DELETE FROM block_gc WHERE workspace = \(bind: workspace) AND hash IN (\(binds: Array(batch)))"
                ).run()
            }
            try await checkBlocks(hashes, workspace: workspace, lengthsOfUnrecordedBlocks: lengthsOfUnrecordedBlocks)
            for batch in packed.chunked(SQLMetadataStore.batchSize) {
                var insert = db.insert(into: "block_refs").columns("workspace", "hash", "volume_id").ignoringConflicts()
                for hash in batch { insert = insert.values(SQLBind(workspace), SQLBind(hash), SQLBind(volume.id)) }
                try await insert.run()
            }
        }
        for batch in Array(retired.keys).chunked(SQLMetadataStore.batchSize) {
            try await db.raw(
                """
                UPDATE entries SET removed_version = \(bind: version.rawValue)
                WHERE volume_id = \(bind: volume.id) AND removed_version = \(bind: SQLMetadataStore.live)
                  AND path IN (\(binds: batch.map(\.rawValue)))
                """
            ).run()
        }
        for batch in Array(written.values).chunked(SQLMetadataStore.batchSize / 4) {
            var insert = db.insert(into: "entries").columns(
                "volume_id", "path", "parent", "name", "added_version", "removed_version", "kind", "size", "mode",
                "mtime_ns", "block_size", "blocks", "inline_data", "target", "uid", "gid", "xattrs", "file_id", "device"
            )
            for entry in batch {
                var blockSize = 0
                var blocks: Data?
                var inline: Data?
                switch entry.content {
                case .inline(let bytes)?: inline = Data(bytes)
                case .blocks(let hashes, let size)?:
                    blockSize = size
                    blocks = Data(BlockHash.pack(hashes))
                case nil: break
                }
                let kind = SQLMetadataStore.kindCode(entry.kind)
                insert = insert.values(
                    SQLBind(volume.id), SQLBind(entry.path.rawValue), SQLBind(entry.path.parent.rawValue), SQLBind(entry.path.name),
                    SQLBind(version.rawValue), SQLBind(SQLMetadataStore.live), SQLBind(kind), SQLBind(entry.size),
                    SQLBind(Int64(entry.mode)), SQLBind(entry.mtimeNanoseconds), SQLBind(blockSize), SQLBind(blocks),
                    SQLBind(inline), SQLBind(entry.symlinkTarget), SQLBind(entry.owner.map { Int64($0.uid) }),
                    SQLBind(entry.owner.map { Int64($0.gid) }), SQLBind(SQLMetadataStore.encodeAttributes(entry.extendedAttributes)),
                    SQLBind(entry.fileID.map { Int64(bitPattern: $0.rawValue) }), SQLBind(entry.device.map { Int64(bitPattern: $0.dev) })
                )
            }
            try await insert.run()
        }
    }

    /// Every block must be stored, undamaged, and exactly as long as its place in its file says: a file
    /// that claims more bytes than its blocks hold would promise readers bytes that do not exist.
    private func checkBlocks(
        _ hashes: Set<BlockHash>, workspace: String,
        lengthsOfUnrecordedBlocks: @Sendable (Set<BlockHash>) async throws -> [BlockHash: Int]
    ) async throws {
        var states = try await SQLMetadataStore.blockStates(hashes, workspace: workspace, on: db)
        let unrecorded = hashes.subtracting(states.keys)
        if !unrecorded.isEmpty {
            let lengths = try await lengthsOfUnrecordedBlocks(unrecorded)
            try await SQLMetadataStore.recordBlocks(lengths, workspace: workspace, on: db)
            for (hash, length) in lengths { states[hash] = BlockState(length: length, damaged: false) }
        }
        let damaged = states.filter(\.value.damaged).keys.sorted()
        guard damaged.isEmpty else {
            throw SiloError(
                .missingBlock,
                "commit names \(damaged.count) block(s) the store holds damaged (first: \(damaged[0].hex)); upload them again (a put or commit from the original files does) and commit again"
            )
        }
        for entry in written.values.sorted(by: { $0.path < $1.path }) {
            guard case .blocks(let blocks, let blockSize)? = entry.content else { continue }
            let layout = BlockLayout(blockSize: blockSize)
            for (index, hash) in blocks.enumerated() {
                let expected = layout.length(ofBlock: index, inFileOf: entry.size)
                guard let state = states[hash], state.length == expected else {
                    throw SiloError(
                        .invalidArgument,
                        "file \(entry.path) says \(entry.size) bytes in blocks of \(blockSize), so block \(index) must hold \(expected) bytes, but block \(hash.hex) holds \(states[hash]?.length ?? 0); nothing was applied",
                        paths: [entry.path.description]
                    )
                }
            }
        }
    }

    func summary(author: String) -> VersionInfo {
        var added: Int64 = 0, changed: Int64 = 0, removed: Int64 = 0, bytes: Int64 = 0
        for path in Set(retired.keys).union(written.keys) {
            let before = retired[path].map { $0 != .directory } ?? false
            let after = written[path].map { $0.kind != .directory } ?? false
            switch (before, after) {
            case (false, true): added += 1
            case (true, true): changed += 1
            case (true, false): removed += 1
            case (false, false): break
            }
            if let entry = written[path], entry.kind == .file { bytes += entry.size }
        }
        return VersionInfo(
            version: version, createdAtMilliseconds: now, author: author,
            filesAdded: added, filesChanged: changed, filesRemoved: removed, bytesAdded: bytes
        )
    }
}
