import Foundation
import SiloClient
import CSiloSystem
import SiloCore

#if canImport(Glibc)
import Glibc
#endif

/// Changes: each lands in the overlay at once and is visible to this mount only, until committed.
extension VolumeFileSystem {
    /// Truncates or extends (`size`), or sets permission bits (`mode`), the modification time or the
    /// owner (`uid`, `gid`; whoever asks has been checked by the kernel).
    public func setAttributes(
        _ inode: Inode, size: UInt64? = nil, mode: UInt32? = nil, mtimeNanoseconds: Int64? = nil, uid: UInt32? = nil, gid: UInt32? = nil
    ) async throws -> Node {
        let path = try inodes.path(of: inode)
        let overlay = try changeable(path)
        if var file = nameless.withLock({ $0[inode] }) {
            if let size { guard Glibc.truncate(file.local, off_t(clamping: size)) == 0 else { throw SiloError.local("cannot truncate a file with no name") } }
            if let mode { file.entry.mode = mode & 0o7777 }
            if uid != nil || gid != nil { file.entry.owner = Owner(uid: uid ?? owner(of: file.entry).uid, gid: gid ?? owner(of: file.entry).gid) }
            nameless.withLock { $0[inode] = file }
            return Node(inode: inode, entry: try namelessEntry(inode)!)
        }
        if var ghost = inodes.buried(inode) {
            // A removed file still open: its attributes change for its holders; nothing is committed.
            if let mode { ghost.mode = ghost.mode & ~0o7777 | mode & 0o7777 }
            if let mtimeNanoseconds { ghost.mtimeNanoseconds = mtimeNanoseconds }
            if uid != nil || gid != nil { ghost.owner = Owner(uid: uid ?? owner(of: ghost).uid, gid: gid ?? owner(of: ghost).gid) }
            inodes.rebury(inode, as: ghost)
            return Node(inode: inode, entry: ghost)
        }
        guard var entry = try await merged(path) else { throw Self.notFound(path) }
        if let size {
            guard entry.kind == .file else { throw SiloError(.isADirectory, "\(path) is a \(entry.kind.rawValue), not a file") }
            try await copyUp(path, entry)
            try overlay.truncate(path, to: size)
            entry = try await shown(path)
        }
        if mode != nil || mtimeNanoseconds != nil || uid != nil || gid != nil {
            let current = owner(of: entry)
            let newOwner = uid == nil && gid == nil ? nil : Owner(uid: uid ?? current.uid, gid: gid ?? current.gid)
            try await setMetadata(path, entry, in: overlay, mode: mode, owner: newOwner, mtime: mtimeNanoseconds)
            entry = try await shown(path)
        }
        // In a shared mount, a file open for writing takes its new attributes to the volume at close.
        if !isBeingWritten(path) { try await publish([path], conflict: Self.notFound(path)) }
        return Node(inode: inode, entry: entry)
    }

    /// Creates a regular file for `owner` (the creating process) and opens it for writing; counts a
    /// reference, as a lookup does.
    ///
    /// In a shared volume the new name is committed at once, and only if no other mount made it first:
    /// then an `exclusive` create (`O_EXCL`) fails with EEXIST, and any other opens what is there.
    public func create(
        _ name: String, in parent: Inode, mode: UInt32, owner: Owner? = nil, exclusive: Bool = true, truncate: Bool = false
    ) async throws -> (Node, OpenFile) {
        let path = try await newPath(name, in: parent)
        let overlay = try changeable(path)
        let (mode, owner) = try await inherited(mode: mode & 0o7777, owner: owner, in: parent, directory: false)
        let local = try overlay.newFile(at: path, mode: mode, now: Self.now(), owner: owner)
        let handle = try overlay.open(local, at: path, truncate: false, writing: true)
        do {
            try await publish([path], first: [.require(path, .absent)], conflict: SiloError(.pathExists, "\(path) was made by another mount first"))
        } catch let error as SiloError where error.code == .pathExists && !exclusive {
            overlay.close(handle, at: nil)
            let node = try await lookup(name, in: parent)
            return (node, try await open(node.inode, writing: true, truncate: truncate))
        } catch {
            overlay.close(handle, at: nil)
            throw error
        }
        let node = Node(inode: inodes.reference(path), entry: try await shown(path))
        return (node, OpenFile(handle: handle, keepCache: false, backingFile: backingFile(handle, in: overlay)))
    }

    /// The precondition a shared volume's new name is committed under, with the error its failure gives.
    private func publishNew(_ path: VolumePath) async throws {
        try await publish([path], first: [.require(path, .absent)], conflict: SiloError(.pathExists, "\(path) was made by another mount first"))
    }

    /// Creates a regular file with no name in directory `parent` (`O_TMPFILE`) and opens it for
    /// writing: it is in no listing and no commit until ``link(_:as:in:)`` names it.
    public func createNameless(in parent: Inode, mode: UInt32, owner: Owner? = nil, linkable: Bool = true) async throws -> (Node, OpenFile) {
        let directory = try inodes.path(of: parent)
        let overlay = try changeable(directory)
        guard try await merged(directory)?.kind == .directory else { throw SiloError(.notADirectory, "\(directory) is not a directory") }
        let (mode, owner) = try await inherited(mode: mode & 0o7777, owner: owner, in: parent, directory: false)
        let local = try overlay.makeLocal()
        let anonymous = VolumePath(trusted: "\u{0}nameless-" + (local.split(separator: "/").last.map(String.init) ?? ""))
        let inode = inodes.reference(anonymous)
        let entry = Entry(path: anonymous, kind: .file, size: 0, mode: mode, mtimeNanoseconds: Self.now(), version: .empty, owner: owner ?? self.owner)
        nameless.withLock { $0[inode] = Nameless(local: local, entry: entry, linkable: linkable) }
        let handle = try overlay.open(local, at: anonymous, truncate: false, writing: true)
        // The kernel takes the one link it is told of away itself (its O_TMPFILE inode has none).
        var shown = try namelessEntry(inode)!
        shown.linkCount = 1
        return (Node(inode: inode, entry: shown), OpenFile(handle: handle, keepCache: false, backingFile: backingFile(handle, in: overlay)))
    }

    /// A file with no name as it is now (its size and time are its local file's), if `inode` is one.
    func namelessEntry(_ inode: Inode) throws -> Entry? {
        guard let file = nameless.withLock({ $0[inode] }) else { return nil }
        var entry = file.entry
        var info = stat()
        guard stat(file.local, &info) == 0 else { throw SiloError.local("cannot read the local file of a file with no name") }
        entry.size = Int64(info.st_size)
        entry.mtimeNanoseconds = Overlay.mtime(info)
        entry.linkCount = 0
        return entry
    }

    public func makeDirectory(_ name: String, in parent: Inode, mode: UInt32, owner: Owner? = nil) async throws -> Node {
        let path = try await newPath(name, in: parent)
        let overlay = try changeable(path)
        let (mode, owner) = try await inherited(mode: mode, owner: owner, in: parent, directory: true)
        overlay.put(path, .directory(opaque: overlay.isDeleted(path)), mode: mode, mtime: Self.now(), owner: owner)
        try await publishNew(path)
        return Node(inode: inodes.reference(path), entry: try await shown(path))
    }

    public func makeSymlink(_ name: String, in parent: Inode, target: String, owner: Owner? = nil) async throws -> Node {
        let path = try await newPath(name, in: parent)
        let overlay = try changeable(path)
        let (_, owner) = try await inherited(mode: 0o777, owner: owner, in: parent, directory: false)
        overlay.put(path, .symlink(target), mode: 0o777, mtime: Self.now(), owner: owner)
        try await publishNew(path)
        return Node(inode: inodes.reference(path), entry: try await shown(path))
    }

    /// A named pipe (committed like any path) or a Unix socket (this mount's only, never committed).
    public func makeSpecial(
        _ name: String, in parent: Inode, kind: EntryKind, mode: UInt32, owner: Owner? = nil, device: DeviceNumber? = nil
    ) async throws -> Node {
        guard kind == .fifo || kind == .socket || kind.isDevice else {
            throw SiloError(.invalidArgument, "\(name): only fifos, sockets and device nodes are special here")
        }
        // Device nodes are root's to make, as on a local disk, but for the 0,0 character device
        // (overlayfs's whiteout), which anyone may.
        let whiteout = kind == .characterDevice && (device ?? DeviceNumber(major: 0, minor: 0)) == DeviceNumber(major: 0, minor: 0)
        guard !kind.isDevice || whiteout || (owner ?? self.owner).uid == 0 else {
            throw SiloError(.notPermitted, "\(name): only root makes device nodes")
        }
        let path = try await newPath(name, in: parent)
        let overlay = try changeable(path)
        let (mode, owner) = try await inherited(mode: mode & 0o7777, owner: owner, in: parent, directory: false)
        overlay.put(path, .special(kind, device: kind.isDevice ? device ?? DeviceNumber(major: 0, minor: 0) : nil), mode: mode, mtime: Self.now(), owner: owner)
        try await publishNew(path)
        return Node(inode: inodes.reference(path), entry: try await shown(path))
    }

    /// Who a path belongs to as this mount shows it: its recorded owner, else the mounting user.
    public func owner(of entry: Entry) -> Owner {
        entry.owner ?? owner
    }

    /// A new path's mode and owner in directory `parent`: in a set-group-ID directory it takes the
    /// directory's group (not the creator's), and a new directory there is set-group-ID too, as the
    /// kernel does on a local disk (under FUSE the file system must).
    private func inherited(mode: UInt32, owner: Owner?, in parent: Inode, directory: Bool) async throws -> (UInt32, Owner?) {
        guard let folder = try await merged(try inodes.path(of: parent)), folder.mode & UInt32(S_ISGID) != 0 else { return (mode, owner) }
        let group = self.owner(of: folder).gid
        let creator = owner ?? self.owner
        return (directory ? mode | UInt32(S_ISGID) : mode, Owner(uid: creator.uid, gid: group))
    }

    /// unlink (`directory` false) or rmdir (`directory` true).
    public func remove(_ name: String, in parent: Inode, directory: Bool) async throws {
        let folder = try inodes.path(of: parent)
        guard let path = try? folder.appending(name), let entry = try await merged(path) else {
            throw SiloError(.pathNotFound, "\(name) does not exist in \(folder) in this mount")
        }
        let overlay = try changeable(path)
        if directory {
            guard entry.kind == .directory else { throw SiloError(.notADirectory, "\(path) is not a directory") }
            guard try await mergedListing(of: path).isEmpty else { throw SiloError(.directoryNotEmpty, "\(path) is not empty") }
        } else if entry.kind == .directory {
            throw SiloError(.isADirectory, "\(path) is a directory")
        }
        // In a shared volume, the path must still be there (and a directory empty) when it goes.
        let inVolume = try await baseEntry(path) != nil
        try await removeName(path, showing: entry, from: overlay)
        try await publish([path], first: inVolume ? [.remove(path, recursive: false)] : [], conflict: Self.notFound(path))
    }

    /// Removes `path`, which shows `entry`: a file's other names keep its inode; else the inode lives
    /// on without a name for those who hold it (an open file keeps its local bytes, which stay
    /// writable and are dropped when the kernel forgets the inode).
    func removeName(_ path: VolumePath, showing entry: Entry, from overlay: Overlay) async throws {
        let base = try await baseEntry(path)
        if entry.kind == .file, entry.fileID != nil, entry.linkCount > 1 {
            overlay.remove(path, base: base)
            inodes.unlink(path)
        } else if entry.kind == .file, let local = overlay.localFile(at: path), let inode = inodes.existing(path), entry.fileID == nil {
            overlay.remove(path, base: base, keepLocal: true)
            nameless.withLock { $0[inode] = Nameless(local: local, entry: entry, linkable: false) }
            _ = inodes.detach(path)
        } else {
            overlay.remove(path, base: base)
            inodes.bury(path, as: entry)
        }
    }

    /// Makes `name` in `parent` another name of the file `inode` is (a hard link): both names then
    /// show one file, and a commit records them as one (``Change/link(_:_:)``). Only regular files
    /// take more names here.
    public func link(_ inode: Inode, as name: String, in parent: Inode) async throws -> Node {
        if let file = nameless.withLock({ $0[inode] }) {
            // A file with no name takes its first: it becomes an ordinary new file there.
            guard file.linkable else { throw SiloError(.pathNotFound, "a removed file (or one made O_TMPFILE | O_EXCL) takes no name") }
            let path = try await newPath(name, in: parent)
            let overlay = try changeable(path)
            overlay.put(path, .file(local: file.local), mode: file.entry.mode, mtime: file.entry.mtimeNanoseconds, owner: file.entry.owner)
            // In a shared volume only if no other mount took the name first; the file then stays nameless.
            try await publishNew(path)
            nameless.withLock { $0[inode] = nil }
            inodes.name(inode, path)
            return Node(inode: inode, entry: try await shown(path))
        }
        let source = try inodes.path(of: inode)
        guard let entry = try await merged(source) else { throw Self.notFound(source) }
        let path = try await newPath(name, in: parent)
        let overlay = try changeable(path)
        guard entry.kind == .file else {
            throw SiloError(.notPermitted, "\(source) is a \(entry.kind.rawValue); only regular files take more names in a volume")
        }
        let file = overlay.share(source, entry: overlay.localFile(at: source) == nil ? try await base.withContent(entry) : entry)
        overlay.link(path, to: file)
        _ = inodes.identifier(source, file: file)  // the source's inode is the file's from now on
        // A lost race forgets only the new name: the source may be open and written to.
        try await publish(
            [path, source], first: [.require(path, .absent), .require(source, .present)], discarding: [path],
            conflict: SiloError(.pathExists, "\(path) was made, or \(source) removed, by another mount first"))
        return Node(inode: inodes.reference(path, file: file), entry: try await shown(path))
    }

    /// Moves `name` in `parent` to `newName` in `newParent`, replacing what is there (a file, or an
    /// empty directory when a directory moves) unless `noReplace`.
    public func rename(_ name: String, in parent: Inode, to newName: String, in newParent: Inode, noReplace: Bool = false) async throws {
        let folder = try inodes.path(of: parent)
        guard let source = try? folder.appending(name), let moving = try await merged(source) else {
            throw SiloError(.pathNotFound, "\(name) does not exist in \(folder) in this mount")
        }
        let overlay = try changeable(source)
        let target = try inodes.path(of: newParent).appending(name: newName)
        guard source != target else { return }
        guard !target.isWithin(source) else { throw SiloError(.invalidArgument, "\(source) cannot move into itself (\(target))") }
        if let existing = try await merged(target) {
            if noReplace { throw SiloError(.pathExists, "\(target) exists") }
            if existing.kind == .directory {
                guard moving.kind == .directory else { throw SiloError(.isADirectory, "\(target) is a directory") }
                guard try await mergedListing(of: target).isEmpty else { throw SiloError(.directoryNotEmpty, "\(target) is not empty") }
            } else if moving.kind == .directory {
                throw SiloError(.notADirectory, "\(target) is not a directory")
            }
            try await removeName(target, showing: existing, from: overlay)
        }
        // Everything beneath a moved directory moves with it; base content moves without being copied.
        var moves: [(VolumePath, Entry)] = [(source, moving)]
        if moving.kind == .directory { moves += try await mergedTree(of: source) }
        var resolved: [(VolumePath, Entry)] = []
        for (path, entry) in moves {
            // A base file moves by reference to its content, which listings leave out for small files.
            resolved.append((path, overlay.localFile(at: path) == nil ? try await base.withContent(entry) : entry))
        }
        for (path, entry) in resolved {
            let destination = VolumePath(trusted: target.rawValue + path.rawValue.dropFirst(source.rawValue.count))
            overlay.move(from: path, entry: entry, to: destination, opaque: path == source)
        }
        let sourceInVolume = try await baseEntry(source) != nil
        for (path, _) in resolved.reversed() {
            overlay.remove(path, base: try await baseEntry(path), keepLocal: true)
        }
        inodes.rename(source, to: target)
        // In a shared volume, of two mounts moving one path only one finds it.
        try await publish(
            [source, target], first: (sourceInVolume ? [.require(source, .present)] : []) + (noReplace ? [.require(target, .absent)] : []),
            conflict: noReplace ? SiloError(.pathExists, "\(target) was made, or \(source) moved, by another mount first") : Self.notFound(source))
    }

    /// Swaps `name` in `parent` and `newName` in `newParent` (`RENAME_EXCHANGE`): both must exist;
    /// each takes the other's place, directories with what they hold.
    public func exchange(_ name: String, in parent: Inode, with newName: String, in newParent: Inode) async throws {
        let first = try inodes.path(of: parent).appending(name: name)
        let second = try inodes.path(of: newParent).appending(name: newName)
        guard let one = try await merged(first), let other = try await merged(second) else {
            throw SiloError(.pathNotFound, "\(first) and \(second) must both exist to be exchanged")
        }
        let overlay = try changeable(first)
        guard first != second else { return }
        guard !first.isWithin(second), !second.isWithin(first) else {
            throw SiloError(.invalidArgument, "\(first) and \(second) cannot be exchanged: one holds the other")
        }
        var sides: [Overlay.Move] = []
        var bases: [VolumePath: Entry] = [:]
        for (from, to, entry) in [(first, second, one), (second, first, other)] {
            var moves = [(from, entry)]
            if entry.kind == .directory { moves += try await mergedTree(of: from) }
            var resolved: [(VolumePath, Entry)] = []
            for (path, entry) in moves {
                resolved.append((path, overlay.localFile(at: path) == nil ? try await base.withContent(entry) : entry))
                bases[path] = try await baseEntry(path)
            }
            sides.append(Overlay.Move(from: from, to: to, entries: resolved))
        }
        overlay.exchange(sides, bases: bases)
        inodes.exchange(first, second)
        try await publish(
            [first, second], first: [.require(first, .present), .require(second, .present)],
            conflict: SiloError(.pathNotFound, "\(first) or \(second) was moved by another mount first"))
    }

    /// Writes to an open local file; returns how many bytes were written.
    public func write(_ inode: Inode, handle: UInt64, offset: UInt64, bytes: UnsafeRawBufferPointer) throws -> Int {
        let path = try inodes.path(of: inode)
        return try changeable(path).write(handle, path: path, offset: offset, bytes: bytes)
    }

    /// fallocate(2) with its `mode` on a file: done on its local copy (made first), so allocation,
    /// punched holes and zeroed ranges behave as on the disk holding the mount's changes.
    /// With the `handle` of an open local file (a file written, made with no name, or removed while
    /// open), that very file is changed, whatever its name leads to now.
    public func allocate(_ inode: Inode, handle: UInt64 = 0, offset: UInt64, length: UInt64, mode: UInt32) async throws {
        let path = try inodes.path(of: inode)
        let overlay = try changeable(path)
        guard let start = Int64(exactly: offset), let count = Int64(exactly: length), let mode = Int32(exactly: mode),
            start.addingReportingOverflow(count).overflow == false
        else { throw SiloError.local("fallocate of \(path) past the largest offset", errno: EFBIG) }
        if handle != 0 {
            guard silo_fallocate(try overlay.descriptor(handle), mode, start, count) == 0 else { throw SiloError.local("cannot fallocate \(path)") }
            overlay.touch(path)
            return
        }
        guard let entry = try await merged(path) else { throw Self.notFound(path) }
        guard entry.kind == .file else { throw SiloError(.isADirectory, "\(path) is a \(entry.kind.rawValue), not a file") }
        try await copyUp(path, entry)
        guard let local = overlay.localFile(at: path) else { throw SiloError(.io, "\(path) has no local file") }
        let fd = Glibc.open(local, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw SiloError.local("cannot open the local file of \(path)") }
        defer { Glibc.close(fd) }
        guard silo_fallocate(fd, mode, start, count) == 0 else { throw SiloError.local("cannot fallocate \(path)") }
        overlay.touch(path)
    }

    /// Syncs an open file's local copy; a shared mount commits it too.
    public func fsync(_ inode: Inode, handle: UInt64) async throws {
        if handle != 0 { try overlay?.fsync(handle) }
        try await publishFile(inode, handle: handle)
    }

    // MARK: Helpers

    func changeable(_ path: VolumePath) throws -> Overlay {
        guard let overlay else { throw Self.readOnly(path) }
        return overlay
    }

    /// The entry now at `path`, which a change just made.
    /// Records new metadata of `path` (shown now as `entry`); a base file keeps its content under it,
    /// which listings leave out for small files.
    func setMetadata(
        _ path: VolumePath, _ entry: Entry, in overlay: Overlay, mode: UInt32? = nil, owner: Owner? = nil, mtime: Int64? = nil,
        extendedAttributes: ExtendedAttributes? = nil
    ) async throws {
        let entry = overlay.localFile(at: path) == nil ? try await base.withContent(entry) : entry
        overlay.setMetadata(
            path, entry: entry, mode: mode, owner: owner, mtime: mtime, extendedAttributes: extendedAttributes,
            baseHas: try await baseEntry(path) != nil)
    }

    private func shown(_ path: VolumePath) async throws -> Entry {
        guard let entry = try await merged(path) else { throw SiloError(.io, "\(path) vanished while it was changed") }
        return try await counted(entry)
    }

    private func newPath(_ name: String, in parent: Inode) async throws -> VolumePath {
        let directory = try inodes.path(of: parent)
        let path = try directory.appending(name: name)
        guard try await merged(directory)?.kind == .directory else { throw SiloError(.notADirectory, "\(directory) is not a directory") }
        guard try await merged(path) == nil else { throw SiloError(.pathExists, "\(path) exists") }
        return path
    }

    /// Makes `path` a local file holding its current bytes, so it can be written in place.
    func copyUp(_ path: VolumePath, _ entry: Entry) async throws {
        guard let overlay, overlay.localFile(at: path) == nil else { return }
        let full = try await base.withContent(entry)
        try await overlay.copyUp(path, entry: full, from: cachedCopy(of: full)) { range in try await self.reader.read(full, range) }
    }

    /// Gives a clean local file of `path` still open in this shared mount the base's new content in
    /// place; a path that is no file in the base any more loses its local file (its open descriptors
    /// keep what they had, as a removed file's would).
    func refreshOpenCopy(_ path: VolumePath, local: String, generation: UInt64) async throws {
        guard let overlay else { return }
        guard let listed = (try? await base.child(path)) ?? nil, listed.kind == .file else {
            overlay.discard([path])
            return
        }
        let full = try await base.withContent(listed)
        // This mount's own commit (a close answered before its release): the copy holds it already.
        if let content = full.content,
            overlay.lastCommitted(path) == Overlay.CommittedFile(content: content, mode: full.mode, mtime: full.mtimeNanoseconds, owner: full.owner)
        {
            return
        }
        _ = try await overlay.refresh(path, local: local, generation: generation, to: full, from: cachedCopy(of: full)) { range in
            try await self.reader.read(full, range)
        }
    }

    /// The content cache's whole copy of `full`, if it has one, checked as it is copied: the copy is
    /// read by the kernel without Silo and may have been damaged on disk since it was made, so what
    /// it gives is checked before it can become committed data.
    private func cachedCopy(of full: Entry) -> Overlay.VerifiedCopy? {
        guard let cache = reader.cache, case .blocks(let hashes, let blockSize)? = full.content else { return nil }
        let key = ContentCache.key(of: hashes, size: full.size, blockSize: blockSize)
        guard let path = cache.wholeFile(key, size: full.size) else { return nil }
        return Overlay.VerifiedCopy(path: path) { fd in
            guard ContentCache.matches(fd, hashes: hashes, size: full.size, blockSize: blockSize) else {
                cache.dropWholeFile(key)
                return false
            }
            return true
        }
    }
}

extension VolumePath {
    /// The path of `name` in this directory; a name that cannot be a path's is an invalid argument.
    func appending(name: String) throws -> VolumePath {
        do {
            return try appending(name)
        } catch {
            throw SiloError(.invalidArgument, "'\(name)' cannot be a name in \(self)")
        }
    }
}
