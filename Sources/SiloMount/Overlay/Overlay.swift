import CSiloSystem
import Foundation
import SiloCore

#if canImport(Glibc)
import Glibc
#endif

/// A writable mount's changes over its base version: exactly the paths that changed, each with what
/// it is now (a local file, base content under a new name, a directory, a symlink, or removed).
///
/// File data lives in local files under `scratch/data`, named by a counter, so renames never move
/// data. A commit reads the changed paths from here and never rescans the volume.
///
/// Writes to a local file may pass through the kernel straight to it, unseen here, so a file's size
/// and modification time are the local file's own, and a file open for writing stays uncommitted
/// until a commit that starts after its last writer closed it.
final class Overlay: @unchecked Sendable {
    enum Kind {
        /// Bytes in a local file (created here or copied up from the base on first write).
        case file(local: String)
        /// A base file's content under this path (renamed or with new metadata): no data copied.
        case moved(Entry)
        /// `opaque`: nothing of the base below this path shows (it replaced a removed path, or it
        /// was moved here whole).
        case directory(opaque: Bool)
        case symlink(String)
        /// A named pipe or a device node (committed) or a Unix socket (this mount's only): the kernel
        /// does their I/O.
        case special(EntryKind, device: DeviceNumber? = nil)
        /// Removed: hides the base's entry and everything beneath it.
        case deleted
        /// A name of a file of several names (hard links): what it holds and its attributes are the
        /// file's, kept once in ``Overlay/linkedFiles``.
        case linked(FileID)
    }

    struct Item {
        var kind: Kind
        var mode: UInt32
        /// For local files, the local file's own time is the one shown and committed.
        var mtime: Int64
        /// The path was removed before this was put there: a commit removes what the volume holds
        /// there first (a file where a directory was, say).
        var replaces = false
        /// Bumped by every change; a commit clears `dirty` only if nothing changed since it read the item.
        var generation: UInt64 = 0
        var dirty = true
        /// A commit has carried this path: the volume holds it now, even if the base does not.
        var committed = false
        /// Who it belongs to: the process that made it, a chown, or the base entry's recorded owner.
        var owner: Owner?
        /// Its extended attributes, all of them (a base entry's carried over when it got an item).
        var extendedAttributes: ExtendedAttributes = [:]
        /// Names of linked files the base has at this path or beneath it that this item hides, by file:
        /// what the base's link counts must lose.
        var hides: [FileID: Int] = [:]
        /// A removed name of a linked file that carried the file's uncommitted changes, with no other
        /// changed name left to carry them: the commit writes the file through this name, then removes it.
        var released: FileID?
    }

    /// A file of several names as this mount has changed it.
    struct LinkedFile {
        /// Its content and attributes (kind `.file` or `.moved`).
        var state: Item
        /// How many names the base gives it (0 for a file linked in this mount).
        var baseLinks: Int
    }

    enum Lookup {
        case changed(Entry)
        case gone
        case unchanged
    }

    let scratch: String
    let lock = NSLock()
    var items: [VolumePath: Item] = [:]
    private var children: [VolumePath: Set<VolumePath>] = [:]
    var nextLocal = 0
    private var generation: UInt64 = 0
    /// Bumped by every change to what is uncommitted (an item set, a commit marked): the journal is
    /// written again only when it moved.
    var changes: UInt64 = 0
    var nextHandle: UInt64 = 1
    var handles: [UInt64: (fd: Int32, local: String, writing: Bool)] = [:]
    /// Open handles that may write, by local file.
    var writers: [String: Int] = [:]
    /// Writes under way, by local file: a refresh in place waits for none to be.
    var writesUnderWay: [String: Int] = [:]
    private var committedFiles: [VolumePath: CommittedFile] = [:]
    /// Files of several names changed in this mount, by file: every name's item is `.linked` to one.
    var linkedFiles: [FileID: LinkedFile] = [:]

    /// Every write reaches this overlay (a shared mount: no passthrough), so a file open for writing
    /// is uncommitted only while it holds writes not yet committed, and a clean one still open takes
    /// others' commits in place (``refresh(_:local:generation:to:from:fetch:)``).
    let seesEveryWrite: Bool

    init(scratch: String, seesEveryWrite: Bool = false) throws {
        self.scratch = scratch
        self.seesEveryWrite = seesEveryWrite
        try FileManager.default.createDirectory(atPath: scratch + "/data", withIntermediateDirectories: true)
    }

    /// How many paths carry changes not yet committed.
    var changedPaths: Int { lock.withLock { items.values.filter(\.dirty).count } }

    /// The uncommitted changes, in path order (parents before children).
    func dirtyItems() -> [(VolumePath, Item)] {
        lock.withLock { items.filter { $0.value.dirty }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
    }

    /// What `item` holds, for a linked name the file's state (see ``resolved(_:)``).
    func resolving(_ item: Item) -> Item {
        lock.withLock { resolved(item) }
    }

    /// What a linked name holds: the file's item, under the name's own bookkeeping. Call with the lock held.
    func resolved(_ item: Item) -> Item {
        guard case .linked(let file) = item.kind, let shared = linkedFiles[file]?.state else { return item }
        var result = shared
        result.replaces = item.replaces
        result.generation = item.generation
        result.dirty = item.dirty
        result.committed = item.committed
        result.hides = item.hides
        return result
    }

    /// The state of linked file `file` in this mount, if it changed here.
    func linkedFile(_ file: FileID) -> LinkedFile? {
        lock.withLock { linkedFiles[file] }
    }

    /// How many names `file` has in this mount, given the base's count (`baseLinks`, when the base
    /// has it) : names made here added, names of the base removed or replaced here taken away.
    func linkCount(of file: FileID, baseLinks: Int?) -> Int {
        lock.withLock {
            var count = baseLinks ?? linkedFiles[file]?.baseLinks ?? 0
            for item in items.values {
                if case .linked(file) = item.kind { count += 1 }
                count -= item.hides[file] ?? 0
            }
            return max(count, 0)
        }
    }

    /// The id of the file `path` (shown now as `entry`, a regular file) is, made now if it has none:
    /// the path then becomes the first name of a linked file, keeping what it holds.
    func share(_ path: VolumePath, entry: Entry) -> FileID {
        lock.withLock {
            if let file = entry.fileID {
                recordLinked(entry)
                return file
            }
            let file = FileID.random()
            var item = items[path] ?? Self.item(for: entry)
            var state = item
            state.hides = [:]
            linkedFiles[file] = LinkedFile(state: state, baseLinks: 0)
            item.kind = .linked(file)
            set(path, item)
            return file
        }
    }

    /// Records `path` as another name of linked file `file`.
    func link(_ path: VolumePath, to file: FileID) {
        lock.withLock { set(path, Item(kind: .linked(file), mode: 0, mtime: 0)) }
    }

    /// A base name of a linked file this mount changed under another name: it takes an item (clean:
    /// the volume holds the name already) so that everything done through it reaches the file.
    func adopt(_ path: VolumePath, entry: Entry) -> Entry? {
        lock.withLock {
            guard items[path] == nil, entry.kind == .file, let file = entry.fileID, linkedFiles[file] != nil else { return nil }
            set(path, Item(kind: .linked(file), mode: 0, mtime: 0, hides: [file: 1]))
            items[path]?.dirty = false
            return self.entry(path, items[path]!)
        }
    }

    /// Forgets committed changes (a reload's new base holds them, or a later writer's version of them)
    /// and returns their paths.
    /// With ``seesEveryWrite``, a clean local file still open here is kept: it is returned in `open`
    /// with its generation, for the caller to refresh in place.
    func dropCommitted() -> (dropped: [VolumePath], open: [(path: VolumePath, local: String, generation: UInt64)]) {
        lock.withLock {
            var clean = items.filter { !$0.value.dirty }
            var open: [(path: VolumePath, local: String, generation: UInt64)] = []
            if seesEveryWrite {
                let held = Set(handles.values.map(\.local))
                for (path, item) in clean {
                    if case .file(let local) = item.kind, held.contains(local) {
                        open.append((path, local, item.generation))
                        clean[path] = nil
                    }
                }
            }
            for (path, item) in clean {
                if case .file(let local) = item.kind { unlink(local) }
                set(path, nil)
            }
            // A linked file no dirty name holds any more is the new base's.
            var held = Set<FileID>()
            for item in items.values {
                if case .linked(let file) = item.kind { held.insert(file) }
                if let file = item.released { held.insert(file) }  // still to be written through its removed name
            }
            for (file, linked) in linkedFiles where !held.contains(file) {
                if case .file(let local) = linked.state.kind, writers[local] == nil { unlink(local) }
                linkedFiles[file] = nil
            }
            return (Array(clean.keys), open)
        }
    }

    /// Gives `path`'s local file, still open here and unchanged since `generation`, `entry`'s bytes
    /// and attributes in place, so that the descriptors open on it read what another mount committed.
    /// The bytes are gathered in a file of their own first and copied over in the kernel in one go.
    /// False (and nothing changed) if the file was written meanwhile.
    func refresh(
        _ path: VolumePath, local: String, generation: UInt64, to entry: Entry, from copy: VerifiedCopy?,
        fetch: (Range<Int64>) async throws -> [UInt8]
    ) async throws -> Bool {
        let gathered = try makeLocal()
        defer { unlink(gathered) }
        let fd = Glibc.open(gathered, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw SiloError.local("cannot open the local file \(gathered)") }
        defer { Glibc.close(fd) }
        try await fill(fd, local: gathered, of: path, with: entry, from: copy, fetch: fetch)
        return try lock.withLock {
            guard var item = items[path], item.generation == generation, !item.dirty, case .file(local) = item.kind, writesUnderWay[local] == nil
            else { return false }
            let target = Glibc.open(local, O_WRONLY | O_CLOEXEC)
            guard target >= 0 else { throw SiloError.local("cannot open the local file \(local)") }
            defer { Glibc.close(target) }
            guard try Self.copyFile(gathered, to: target, size: entry.size), ftruncate(target, off_t(entry.size)) == 0 else {
                throw SiloError.local("cannot refresh the local copy of \(path)")
            }
            Self.setTime(target, entry.mtimeNanoseconds)
            item.mode = entry.mode
            item.mtime = entry.mtimeNanoseconds
            item.owner = entry.owner
            item.extendedAttributes = entry.extendedAttributes
            items[path] = item
            return true
        }
    }

    /// A file as a commit from this mount carried it.
    struct CommittedFile: Equatable {
        var content: FileContent
        var mode: UInt32
        var mtime: Int64
        var owner: Owner?
    }

    /// The file this mount last committed at `path`, if any.
    func lastCommitted(_ path: VolumePath) -> CommittedFile? {
        lock.withLock { committedFiles[path] }
    }

    /// Marks the items a commit carried as committed, unless they changed while it ran or are open
    /// for writing (writes that pass through the kernel are not seen here, unless ``seesEveryWrite``);
    /// `files` are the files it sent, as sent.
    func markCommitted(_ committed: [(VolumePath, Item)], files: [VolumePath: CommittedFile] = [:]) {
        lock.withLock {
            changes += 1
            committedFiles.merge(files) { $1 }
            for (path, item) in committed where items[path]?.generation == item.generation {
                if !seesEveryWrite, case .file(let local) = resolved(item).kind, writers[local, default: 0] > 0 { continue }
                items[path]?.dirty = false
                items[path]?.committed = true
                // The volume now holds this item, so what it replaced is gone from there too.
                items[path]?.replaces = false
            }
        }
    }

    // MARK: Looking

    func lookup(_ path: VolumePath) -> Lookup {
        lock.withLock {
            guard let item = items[path] else {
                return hidden(path.parent) ? .gone : .unchanged
            }
            return entry(path, item).map(Lookup.changed) ?? .gone
        }
    }

    /// Whether nothing of the base shows below `directory`.
    func hidesBase(below directory: VolumePath) -> Bool {
        lock.withLock { hidden(directory) }
    }

    func isDeleted(_ path: VolumePath) -> Bool {
        lock.withLock {
            if case .deleted? = items[path]?.kind { return true }
            return false
        }
    }

    /// Changed paths directly in `directory` (removed ones too, which hide base entries).
    func children(of directory: VolumePath) -> [VolumePath] {
        lock.withLock { Array(children[directory] ?? []) }
    }

    func localFile(at path: VolumePath) -> String? {
        lock.withLock { lockedLocalFile(at: path) }
    }

    /// ``localFile(at:)``, with the lock held.
    func lockedLocalFile(at path: VolumePath) -> String? {
        guard let item = items[path] else { return nil }
        if case .file(let local) = resolved(item).kind { return local }
        return nil
    }

    private func hidden(_ directory: VolumePath) -> Bool {
        var current = directory
        while !current.isRoot {
            if let item = items[current] {
                switch item.kind {
                case .directory(let opaque): if opaque { return true }
                default: return true
                }
            }
            current = current.parent
        }
        return false
    }

    private func entry(_ path: VolumePath, _ item: Item) -> Entry? {
        if case .linked(let file) = item.kind {
            var entry = entry(path, resolved(item))
            entry?.fileID = file
            return entry
        }
        return entry(path, shown: item)
    }

    private func entry(_ path: VolumePath, shown item: Item) -> Entry? {
        switch item.kind {
        case .linked: return nil
        case .deleted:
            return nil
        case .file(let local):
            var info = stat()
            guard stat(local, &info) == 0 else {
                return Entry(path: path, kind: .file, size: 0, mode: item.mode, mtimeNanoseconds: item.mtime, version: .empty)
            }
            return Entry(
                path: path, kind: .file, size: Int64(info.st_size), mode: item.mode, mtimeNanoseconds: Self.mtime(info),
                version: .empty, owner: item.owner, extendedAttributes: item.extendedAttributes
            )
        case .moved(let base):
            var entry = base
            entry.path = path
            entry.mode = item.mode
            entry.mtimeNanoseconds = item.mtime
            entry.owner = item.owner
            entry.extendedAttributes = item.extendedAttributes
            return entry
        case .directory:
            return Entry(
                path: path, kind: .directory, size: 0, mode: item.mode, mtimeNanoseconds: item.mtime, version: .empty, owner: item.owner,
                extendedAttributes: item.extendedAttributes)
        case .symlink(let target):
            return Entry(
                path: path, kind: .symlink, size: Int64(target.utf8.count), mode: 0o777, mtimeNanoseconds: item.mtime,
                version: .empty, symlinkTarget: target, owner: item.owner, extendedAttributes: item.extendedAttributes
            )
        case .special(let kind, let device):
            return Entry(
                path: path, kind: kind, size: 0, mode: item.mode, mtimeNanoseconds: item.mtime, version: .empty, owner: item.owner,
                extendedAttributes: item.extendedAttributes, device: device)
        }
    }

    // MARK: Changing

    func put(_ path: VolumePath, _ kind: Kind, mode: UInt32, mtime: Int64, owner: Owner?) {
        lock.withLock { set(path, Item(kind: kind, mode: mode & 0o7777, mtime: mtime, owner: owner)) }
    }

    func set(_ path: VolumePath, _ item: Item?) {
        changes += 1
        var item = item
        if item != nil {
            generation += 1
            item!.generation = generation
            item!.dirty = true
            if let existing = items[path] {
                if isDeletion(existing) {
                    if !isDeletion(item!) { item!.replaces = true }
                } else {
                    item!.committed = item!.committed || existing.committed
                }
                item!.hides = existing.hides
            }
        }
        items[path] = item
        if item != nil {
            children[path.parent, default: []].insert(path)
        } else {
            children[path.parent]?.remove(path)
        }
    }

    private func isDeletion(_ item: Item) -> Bool {
        if case .deleted = item.kind { return true }
        return false
    }

    /// A new empty local file at `path`; returns its local name.
    func newFile(at path: VolumePath, mode: UInt32, now: Int64, owner: Owner?) throws -> String {
        let local = try makeLocal()
        put(path, .file(local: local), mode: mode, mtime: now, owner: owner)
        return local
    }

    func makeLocal() throws -> String {
        let local = lock.withLock {
            nextLocal += 1
            return "\(scratch)/data/\(nextLocal)"
        }
        let fd = Glibc.open(local, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SiloError.local("cannot create the local file \(local)") }
        Glibc.close(fd)
        return local
    }

    /// A local file said to hold an entry's bytes, and the check that the bytes copied from it are.
    struct VerifiedCopy {
        var path: String
        /// Given a descriptor of what was copied, whether it holds the entry's bytes.
        var verify: (Int32) -> Bool
    }

    /// Makes `path` a local file with `entry`'s bytes: copied from `copy` (a local file holding them)
    /// when given and what it gave verifies, else read through `fetch` a block's worth at a time.
    func copyUp(_ path: VolumePath, entry: Entry, from copy: VerifiedCopy?, fetch: (Range<Int64>) async throws -> [UInt8]) async throws {
        let local = try makeLocal()
        let fd = Glibc.open(local, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw SiloError.local("cannot open the local file \(local)") }
        defer { Glibc.close(fd) }
        try await fill(fd, local: local, of: path, with: entry, from: copy, fetch: fetch)
        lock.withLock {
            let state = Item(kind: .file(local: local), mode: entry.mode, mtime: entry.mtimeNanoseconds, owner: entry.owner,
                extendedAttributes: entry.extendedAttributes)
            guard let file = entry.fileID else {
                set(path, state)
                // Where every write is seen, a copy is uncommitted only once something changes it.
                if seesEveryWrite { items[path]?.dirty = false }
                return
            }
            // One copy for every name of the file.
            var item = items[path] ?? Item(kind: .linked(file), mode: 0, mtime: 0)
            if items[path] == nil { item.hides[file] = 1 }
            linkedFiles[file] = LinkedFile(state: state, baseLinks: linkedFiles[file]?.baseLinks ?? entry.linkCount)
            item.kind = .linked(file)
            set(path, item)
        }
    }

    /// Writes `entry`'s bytes into `fd` (the local file `local`, empty): copied from `copy` when given
    /// and what it gave verifies, else read through `fetch` a block's worth at a time.
    private func fill(
        _ fd: Int32, local: String, of path: VolumePath, with entry: Entry, from copy: VerifiedCopy?,
        fetch: (Range<Int64>) async throws -> [UInt8]
    ) async throws {
        if let copy, try Self.copyFile(copy.path, to: fd, size: entry.size), copy.verify(fd) {
        } else {
            let step = Int64(8 * 1024 * 1024)
            var offset: Int64 = 0
            while offset < entry.size {
                let bytes = try await fetch(offset..<min(entry.size, offset + step))
                let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
                guard written == bytes.count else {
                    throw SiloError.local("cannot write the local copy \(local) of \(path)", errno: written < 0 ? errno : EIO)
                }
                offset += Int64(bytes.count)
            }
        }
        Self.setTime(fd, entry.mtimeNanoseconds)
    }

    /// Copies `size` bytes of `source` into `fd` in the kernel (no user-space copy; a reflink where the
    /// file system shares extents). False if `source` cannot be opened; the caller then fetches.
    private static func copyFile(_ source: String, to fd: Int32, size: Int64) throws -> Bool {
        let input = Glibc.open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { return false }
        defer { Glibc.close(input) }
        var copied: Int64 = 0
        while copied < size {
            let count = silo_copy_file_range(input, fd, UInt(size - copied))
            guard count > 0 else {
                if count < 0 && errno == EINTR { continue }
                throw SiloError.local("cannot copy \(source)", errno: count < 0 ? errno : EIO)
            }
            copied += Int64(count)
        }
        return true
    }

    private static func setTime(_ fd: Int32, _ nanoseconds: Int64) {
        var (seconds, rest) = nanoseconds.quotientAndRemainder(dividingBy: 1_000_000_000)
        if rest < 0 {  // before 1970: whole seconds round down
            seconds -= 1
            rest += 1_000_000_000
        }
        let time = timespec(tv_sec: Int(seconds), tv_nsec: Int(rest))
        let times = [time, time]
        _ = futimens(fd, times)
    }

    static func mtime(_ info: stat) -> Int64 {
        Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    }

    func truncate(_ path: VolumePath, to size: UInt64) throws {
        guard let local = localFile(at: path) else { throw SiloError(.io, "\(path) has no local file to truncate") }
        guard Glibc.truncate(local, off_t(size)) == 0 else { throw SiloError.local("cannot truncate \(path)") }
        touch(path)
    }

    /// New permission bits, owner or modification time; a base file gets an item that keeps its content.
    func setMetadata(
        _ path: VolumePath, entry: Entry, mode: UInt32?, owner: Owner? = nil, mtime: Int64?, extendedAttributes: ExtendedAttributes? = nil,
        baseHas: Bool
    ) {
        lock.withLock {
            var item = items[path] ?? Self.item(for: entry)
            if case .linked(let file) = item.kind {
                // Every name shows the file's attributes; the name changed through carries them.
                recordLinked(entry)
                if var linked = linkedFiles[file] {
                    Self.apply(to: &linked.state, mode: mode, owner: owner, mtime: mtime, extendedAttributes: extendedAttributes)
                    linkedFiles[file] = linked
                }
                if items[path] == nil, let base = entry.fileID { item.hides[base, default: 0] += 1 }
                return set(path, item)
            }
            Self.apply(to: &item, mode: mode, owner: owner, mtime: mtime, extendedAttributes: extendedAttributes)
            set(path, item)
        }
    }

    private static func apply(to item: inout Item, mode: UInt32?, owner: Owner?, mtime: Int64?, extendedAttributes: ExtendedAttributes?) {
        do {
            if let mode { item.mode = mode & 0o7777 }
            if let owner { item.owner = owner }
            if let extendedAttributes { item.extendedAttributes = extendedAttributes }
            if let mtime {
                item.mtime = mtime
                if case .file(let local) = item.kind {
                    let fd = Glibc.open(local, O_WRONLY | O_CLOEXEC)
                    if fd >= 0 {
                        Self.setTime(fd, mtime)
                        Glibc.close(fd)
                    }
                }
            }
        }
    }

    /// An item standing for a base entry as it is: its content by reference, its attributes; a name
    /// of a linked file stands for the file (`linking`).
    private static func item(for entry: Entry, linking: Bool = true) -> Item {
        if linking, entry.kind == .file, let file = entry.fileID { return Item(kind: .linked(file), mode: 0, mtime: 0) }
        return Item(kind: kind(of: entry), mode: entry.mode, mtime: entry.mtimeNanoseconds, owner: entry.owner, extendedAttributes: entry.extendedAttributes)
    }

    /// The base state of the linked file `entry` is a name of, recorded if this mount has none yet.
    private func recordLinked(_ entry: Entry) {
        guard entry.kind == .file, let file = entry.fileID, linkedFiles[file] == nil else { return }
        linkedFiles[file] = LinkedFile(state: Self.item(for: entry, linking: false), baseLinks: entry.linkCount)
    }

    private static func kind(of entry: Entry) -> Kind {
        switch entry.kind {
        case .file: .moved(entry)
        case .directory: .directory(opaque: false)
        case .symlink: .symlink(entry.symlinkTarget ?? "")
        case .fifo, .socket, .characterDevice, .blockDevice: .special(entry.kind, device: entry.device)
        }
    }

    /// Removes `path` (and changes recorded beneath it); leaves a marker when the volume may hold the
    /// path: the base has it, a commit from this mount carried it, or what is there replaced something
    /// the volume held (a directory made where a committed file was removed).
    func remove(_ path: VolumePath, base: Entry?, keepLocal: Bool = false) {
        lock.withLock { removeLocked(path, base: base, keepLocal: keepLocal) }
    }

    private func removeLocked(_ path: VolumePath, base: Entry?, keepLocal: Bool) {
        do {
            let inVolume = base != nil || items[path]?.committed == true || items[path]?.replaces == true
            var hides: [FileID: Int] = [:]
            if items[path] == nil, let base, base.kind == .file, let file = base.fileID { hides[file] = 1 }
            var released: FileID?
            for (changed, item) in items where changed.isWithin(path) {
                if !keepLocal, case .file(let local) = item.kind { unlink(local) }
                hides.merge(item.hides, uniquingKeysWith: +)
                set(changed, nil)
                guard case .linked(let file) = item.kind, item.dirty else { continue }
                // The file's changes must still reach its other names: through one of them, or this one.
                if let (other, carrier) = items.first(where: {
                    guard !$0.key.isWithin(path), case .linked(file) = $0.value.kind else { return false }
                    return true
                }) {
                    set(other, carrier)
                } else {
                    released = file
                }
            }
            if inVolume || released != nil { set(path, Item(kind: .deleted, mode: 0, mtime: 0, hides: hides, released: released)) }
        }
    }

    /// What moves in one direction of an exchange: `from` and what is beneath it, as shown, to `to`.
    struct Move {
        var from: VolumePath
        var to: VolumePath
        var entries: [(VolumePath, Entry)]
    }

    /// Two trees swap places (`RENAME_EXCHANGE`), as one change: `bases` holds the base's entry at
    /// each moving path that it has.
    func exchange(_ moves: [Move], bases: [VolumePath: Entry]) {
        lock.withLock {
            var placed: [(VolumePath, Item)] = []
            for move in moves {
                for (path, entry) in move.entries {
                    if items[path] == nil { recordLinked(entry) }
                    var item = items[path] ?? Self.item(for: entry)
                    item.hides = [:]
                    item.replaces = false
                    item.committed = false
                    if case .directory = item.kind { item.kind = .directory(opaque: true) }
                    placed.append((VolumePath(trusted: move.to.rawValue + path.rawValue.dropFirst(move.from.rawValue.count)), item))
                }
            }
            for move in moves {
                for (path, _) in move.entries.reversed() { removeLocked(path, base: bases[path], keepLocal: true) }
            }
            for (path, item) in placed { set(path, item) }
        }
    }

    /// Forgets the changes at and beneath `roots` (a shared mount's change another mount's commit beat).
    func discard(_ roots: [VolumePath]) {
        lock.withLock {
            for (path, item) in items where roots.contains(where: { path.isWithin($0) }) {
                if case .file(let local) = item.kind, writers[local] == nil { unlink(local) }
                set(path, nil)
            }
        }
    }

    /// Records `entry` (as this mount shows it at `source`) at `target`, for a rename.
    func move(from source: VolumePath, entry: Entry, to target: VolumePath, opaque: Bool) {
        lock.withLock {
            if items[source] == nil { recordLinked(entry) }
            var item = items[source] ?? Self.item(for: entry)
            item.hides = [:]
            if case .directory = item.kind { item.kind = .directory(opaque: true) }
            item.replaces = false
            item.committed = false
            set(target, item)
        }
    }

    /// Records that `path` changed (its bytes did: the local file has the new time itself).
    func touch(_ path: VolumePath) {
        lock.withLock {
            if let item = items[path] { set(path, item) }
        }
    }
}
