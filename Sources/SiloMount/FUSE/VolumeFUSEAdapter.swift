import Foundation
import SiloCore
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// Serves a ``VolumeFileSystem`` to the kernel: FUSE's node numbers are its inodes, its errors
/// become errnos (``Errno``), its async calls are waited for on the request threads (``Bridge``),
/// and its entries become attributes with the cache timeouts its kind allows.
public final class VolumeFUSEAdapter: FUSEFileSystem, CacheInvalidator, @unchecked Sendable {
    public let fileSystem: VolumeFileSystem
    /// The session serving this adapter, told what to drop from the kernel's caches.
    public weak var kernel: (any FUSEInvalidator)?

    /// How long the kernel may trust what it learnt of an unchanged base.
    static let cacheSeconds = 24 * 3600.0
    /// How long it may trust attributes in a writable mount, where files change under it.
    static let writableSeconds = 1.0

    /// Whether programs may use extended attributes. Off, the kernel learns at the first request that
    /// there are none (ENOSYS) and asks no more; on, it also asks for `security.capability` before
    /// every write, passed-through writes included (one request each: about 8× the time of small
    /// writes, `docs/benchmarks.md`), which is why mounts turn it on only when told (`--xattrs`).
    public let extendedAttributes: Bool

    public init(_ fileSystem: VolumeFileSystem, extendedAttributes: Bool = false) {
        self.fileSystem = fileSystem
        self.extendedAttributes = extendedAttributes
        fileSystem.invalidator = self
    }

    var timeout: Double { fileSystem.writable ? Self.writableSeconds : Self.cacheSeconds }
    /// How long the kernel may keep a file's attributes: none in a shared mount, where another mount's
    /// close may change a file's size at any time and a read must not stop at the size seen before.
    var attributeTimeout: Double { fileSystem.kind == .shared ? 0 : timeout }

    /// A shared mount moves to newer versions from inside requests (an open, a lookup), where the
    /// kernel would wait on the request itself to forget an entry: its notices go from a queue.
    private let notices = DispatchQueue(label: "silo.invalidations")

    public func invalidate(_ inode: Inode) {
        guard fileSystem.kind == .shared else { return kernel?.invalidate(node: inode.rawValue) ?? () }
        notices.async { [weak self] in self?.kernel?.invalidate(node: inode.rawValue) }
    }

    public func invalidate(name: String, in parent: Inode) {
        guard fileSystem.kind == .shared else { return kernel?.invalidate(entry: name, in: parent.rawValue) ?? () }
        notices.async { [weak self] in self?.kernel?.invalidate(entry: name, in: parent.rawValue) }
    }

    /// Waits for the queue (from a lock request, which holds no request thread while it waits).
    public func drain() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in notices.async { done.resume() } }
    }

    // MARK: Reading

    public func lookup(parent: UInt64, name: String) throws -> FUSEEntry {
        let found = try Bridge.wait { [fileSystem] in try await fileSystem.lookup(name, in: Inode(parent)) }
        return entry(found)
    }

    public func forget(node: UInt64, lookups: UInt64) {
        fileSystem.forget(Inode(node), references: lookups)
    }

    public func attributes(of node: UInt64) throws -> FUSEAttributes {
        attributes(try Bridge.wait { [fileSystem] in try await fileSystem.node(Inode(node)) })
    }

    public func attributeTimeout(of node: UInt64) -> Double { attributeTimeout }

    public func readLink(_ node: UInt64) throws -> String {
        try Bridge.wait { [fileSystem] in try await fileSystem.readLink(Inode(node)) }
    }

    public func listDirectory(_ node: UInt64) throws -> [FUSEDirectoryEntry] {
        let (items, parent) = try Bridge.wait { [fileSystem] in
            (try await fileSystem.list(Inode(node)), try fileSystem.parent(of: Inode(node)))
        }
        return [
            FUSEDirectoryEntry(node: node, name: ".", type: S_IFDIR),
            FUSEDirectoryEntry(node: parent.rawValue, name: "..", type: S_IFDIR),
        ] + items.map { FUSEDirectoryEntry(node: $0.inode.rawValue, name: $0.name, type: Self.type($0.kind)) }
    }

    public func open(_ node: UInt64, flags: Int32) throws -> FUSEOpened {
        let writing = flags & O_ACCMODE != O_RDONLY
        let truncate = flags & O_TRUNC != 0
        let opened = try Bridge.wait { [fileSystem] in try await fileSystem.open(Inode(node), writing: writing, truncate: truncate) }
        return FUSEOpened(handle: opened.handle, keepCache: opened.keepCache, backingFile: opened.backingFile)
    }

    public func read(_ node: UInt64, handle: UInt64, offset: UInt64, size: Int) throws -> [UInt8] {
        if handle != 0 { return try errno { try fileSystem.readLocal(handle, offset: offset, size: size) } }
        return try Bridge.wait { [fileSystem] in try await fileSystem.read(Inode(node), offset: offset, size: size) }
    }

    public func release(_ node: UInt64, handle: UInt64) {
        fileSystem.release(Inode(node), handle: handle)
        if fileSystem.kind == .shared {
            do {
                try Bridge.wait { [fileSystem] in try await fileSystem.settle(Inode(node)) }
            } catch {
                FileHandle.standardError.write(Data("silo: \(error)\n".utf8))
            }
        }
    }

    public func statistics() throws -> FUSEStatistics {
        guard let figures = try errno({ try fileSystem.diskFigures() }) else {
            return FUSEStatistics(blockSize: 4096, blocks: 0, freeBlocks: 0, files: 0, freeFiles: 0)
        }
        // Writes land in the scratch directory: its disk's figures are the real ones.
        return FUSEStatistics(
            blockSize: UInt32(figures.f_frsize), blocks: UInt64(figures.f_blocks), freeBlocks: UInt64(figures.f_bavail),
            files: UInt64(figures.f_files), freeFiles: UInt64(figures.f_favail)
        )
    }

    // MARK: Changing

    public func setAttributes(of node: UInt64, _ changes: FUSEAttributeChanges) throws -> FUSEAttributes {
        attributes(
            try Bridge.wait { [fileSystem] in
                try await fileSystem.setAttributes(
                    Inode(node), size: changes.size, mode: changes.mode, mtimeNanoseconds: changes.mtimeNanoseconds, uid: changes.uid,
                    gid: changes.gid
                )
            }
        )
    }

    public func create(parent: UInt64, name: String, mode: UInt32, flags: Int32, caller: FUSECaller) throws -> (FUSEEntry, FUSEOpened) {
        let (node, opened) = try Bridge.wait { [fileSystem] in
            try await fileSystem.create(
                name, in: Inode(parent), mode: mode, owner: Owner(uid: caller.uid, gid: caller.gid), exclusive: flags & O_EXCL != 0,
                truncate: flags & O_TRUNC != 0)
        }
        return (entry(node), FUSEOpened(handle: opened.handle, keepCache: opened.keepCache, backingFile: opened.backingFile))
    }

    public func createNameless(parent: UInt64, mode: UInt32, flags: Int32, caller: FUSECaller) throws -> (FUSEEntry, FUSEOpened) {
        let (node, opened) = try Bridge.wait { [fileSystem] in
            try await fileSystem.createNameless(
                in: Inode(parent), mode: mode, owner: Owner(uid: caller.uid, gid: caller.gid), linkable: flags & O_EXCL == 0)
        }
        return (entry(node), FUSEOpened(handle: opened.handle, keepCache: opened.keepCache, backingFile: opened.backingFile))
    }

    public func makeDirectory(parent: UInt64, name: String, mode: UInt32, caller: FUSECaller) throws -> FUSEEntry {
        entry(
            try Bridge.wait { [fileSystem] in
                try await fileSystem.makeDirectory(name, in: Inode(parent), mode: mode, owner: Owner(uid: caller.uid, gid: caller.gid))
            })
    }

    public func makeNode(parent: UInt64, name: String, mode: UInt32, device: UInt32, caller: FUSECaller) throws -> FUSEEntry {
        let kind: EntryKind
        switch mode & S_IFMT {
        case S_IFIFO: kind = .fifo
        case S_IFSOCK: kind = .socket
        case S_IFCHR: kind = .characterDevice
        case S_IFBLK: kind = .blockDevice
        default: throw FUSEError(EPERM)
        }
        let number = kind.isDevice ? Self.deviceNumber(device) : nil
        return entry(
            try Bridge.wait { [fileSystem] in
                try await fileSystem.makeSpecial(
                    name, in: Inode(parent), kind: kind, mode: mode & 0o7777, owner: Owner(uid: caller.uid, gid: caller.gid), device: number)
            })
    }

    /// A device number from FUSE's 32-bit form (the kernel's `new_encode_dev`).
    static func deviceNumber(_ encoded: UInt32) -> DeviceNumber {
        DeviceNumber(major: (encoded & 0xfff00) >> 8, minor: (encoded & 0xff) | ((encoded >> 12) & 0xfff00))
    }

    /// A device number in FUSE's 32-bit form; numbers beyond it (majors over 4095) do not fit and are cut.
    static func encoded(_ number: DeviceNumber) -> UInt32 {
        (number.minor & 0xff) | ((number.major & 0xfff) << 8) | ((number.minor & ~0xff) << 12)
    }

    public func makeSymlink(parent: UInt64, name: String, target: String, caller: FUSECaller) throws -> FUSEEntry {
        entry(
            try Bridge.wait { [fileSystem] in
                try await fileSystem.makeSymlink(name, in: Inode(parent), target: target, owner: Owner(uid: caller.uid, gid: caller.gid))
            })
    }

    public func remove(parent: UInt64, name: String, directory: Bool) throws {
        try Bridge.wait { [fileSystem] in try await fileSystem.remove(name, in: Inode(parent), directory: directory) }
    }

    public func link(_ node: UInt64, parent: UInt64, name: String) throws -> FUSEEntry {
        entry(try Bridge.wait { [fileSystem] in try await fileSystem.link(Inode(node), as: name, in: Inode(parent)) })
    }

    public func rename(parent: UInt64, name: String, to newParent: UInt64, newName: String, flags: UInt32, caller: FUSECaller) throws {
        // RENAME_NOREPLACE (1), RENAME_EXCHANGE (2, alone) and RENAME_WHITEOUT (4: a 0,0 character
        // device, overlayfs's mark, is left where the source was).
        let (noReplace, exchange, whiteout): (UInt32, UInt32, UInt32) = (1, 2, 4)
        guard flags & ~(noReplace | exchange | whiteout) == 0, flags & exchange == 0 || flags == exchange else { throw FUSEError(EINVAL) }
        if flags == exchange {
            return try Bridge.wait { [fileSystem] in
                try await fileSystem.exchange(name, in: Inode(parent), with: newName, in: Inode(newParent))
            }
        }
        try Bridge.wait { [fileSystem] in
            try await fileSystem.rename(name, in: Inode(parent), to: newName, in: Inode(newParent), noReplace: flags & noReplace != 0)
            if flags & whiteout != 0 {
                _ = try await fileSystem.makeSpecial(
                    name, in: Inode(parent), kind: .characterDevice, mode: 0, owner: Owner(uid: caller.uid, gid: caller.gid),
                    device: DeviceNumber(major: 0, minor: 0))
            }
        }
    }

    // MARK: Extended attributes

    public func extendedAttribute(_ node: UInt64, name: String) throws -> [UInt8] {
        guard extendedAttributes else { throw FUSEError.notSupported }
        return try Bridge.wait { [fileSystem] in try await fileSystem.extendedAttribute(Inode(node), name: name) }
    }

    public func extendedAttributeNames(_ node: UInt64, caller: FUSECaller) throws -> [String] {
        guard extendedAttributes else { throw FUSEError.notSupported }
        let owner = Owner(uid: caller.uid, gid: caller.gid)
        return try Bridge.wait { [fileSystem] in try await fileSystem.extendedAttributeNames(Inode(node), caller: owner) }
    }

    public func setExtendedAttribute(_ node: UInt64, name: String, value: [UInt8], flags: Int32) throws {
        guard extendedAttributes else { throw FUSEError.notSupported }
        try Bridge.wait { [fileSystem] in try await fileSystem.setExtendedAttribute(Inode(node), name: name, value: value, flags: flags) }
    }

    public func removeExtendedAttribute(_ node: UInt64, name: String) throws {
        guard extendedAttributes else { throw FUSEError.notSupported }
        try Bridge.wait { [fileSystem] in try await fileSystem.removeExtendedAttribute(Inode(node), name: name) }
    }

    public func write(_ node: UInt64, handle: UInt64, offset: UInt64, bytes: UnsafeRawBufferPointer) throws -> Int {
        try errno { try fileSystem.write(Inode(node), handle: handle, offset: offset, bytes: bytes) }
    }

    public func allocate(_ node: UInt64, handle: UInt64, offset: UInt64, length: UInt64, mode: UInt32) throws {
        try Bridge.wait { [fileSystem] in try await fileSystem.allocate(Inode(node), handle: handle, offset: offset, length: length, mode: mode) }
    }

    public func flush(_ node: UInt64, handle: UInt64) throws {
        guard fileSystem.kind == .shared else { return }
        try Bridge.wait { [fileSystem] in try await fileSystem.flush(Inode(node), handle: handle) }
    }

    public func fsync(_ node: UInt64, handle: UInt64) throws {
        try Bridge.wait { [fileSystem] in try await fileSystem.fsync(Inode(node), handle: handle) }
    }

    // MARK: Encoding

    /// Runs a call that needs no waiting, its ``SiloError`` made an errno.
    private func errno<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as SiloError {
            throw FUSEError(Errno.of(error))
        }
    }

    private func entry(_ node: Node) -> FUSEEntry {
        FUSEEntry(attributes: attributes(node), entryTimeout: timeout, attributeTimeout: attributeTimeout)
    }

    private func attributes(_ node: Node) -> FUSEAttributes {
        let entry = node.entry
        let owner = fileSystem.owner(of: entry)
        return FUSEAttributes(
            node: node.inode.rawValue, size: UInt64(entry.size), mode: Self.type(entry.kind) | (entry.mode & 0o7777),
            // A directory's count of 1 is a listing's, not counted: a local disk's least is 2.
            links: UInt32(clamping: entry.kind == .directory && entry.linkCount == 1 ? 2 : entry.linkCount),
            uid: owner.uid, gid: owner.gid,
            mtimeNanoseconds: entry.mtimeNanoseconds, device: entry.device.map(Self.encoded) ?? 0
        )
    }

    static func type(_ kind: EntryKind) -> UInt32 {
        switch kind {
        case .file: S_IFREG
        case .directory: S_IFDIR
        case .symlink: S_IFLNK
        case .fifo: S_IFIFO
        case .socket: S_IFSOCK
        case .characterDevice: S_IFCHR
        case .blockDevice: S_IFBLK
        }
    }
}
