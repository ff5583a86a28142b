import Foundation
import SiloCore

/// A file's identity in a mount, apart from the names it goes by: what a program's `stat` shows as
/// `st_ino` and what the kernel asks about.
public struct Inode: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static let root = Inode(1)
    public static func < (a: Inode, b: Inode) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "inode \(rawValue)" }
}

/// Inodes and the names they go by. The root is inode 1; an inode lives while someone holds a
/// reference to it (the kernel, from lookups), and keeps resolving to its name until then even when
/// a reload has given that name a new inode.
///
/// An inode holds a list of names, the first of which path operations use: a file under several
/// names (a hard link) is one inode with several entries here.
final class InodeTable: @unchecked Sendable {
    private let lock = NSLock()
    private var next: UInt64 = 2
    private var names: [Inode: [VolumePath]] = [.root: [.root]]
    private var inodes: [VolumePath: Inode] = [.root: .root]
    private var references: [Inode: UInt64] = [:]
    /// The inode of each file of several names met so far, so that every name leads to it.
    private var files: [FileID: Inode] = [:]
    private var fileOf: [Inode: FileID] = [:]
    /// Inodes whose last name was removed while the kernel still knew them (an open file, a working
    /// directory), with what they were: `fstat` and `fchmod` on them still work, with no names.
    private var buried: [Inode: Entry] = [:]

    /// The name path operations on `inode` use.
    func path(of inode: Inode) throws -> VolumePath {
        guard let path = lock.withLock({ names[inode]?.first }) else {
            throw SiloError(.pathNotFound, "\(inode) is no longer known to this mount")
        }
        return path
    }

    /// The inode `path` leads to if one was handed out.
    func existing(_ path: VolumePath) -> Inode? {
        lock.withLock { inodes[path] }
    }

    /// The inode of `path` (a name of `file`, if linked), made if needed, without counting a
    /// reference (for directory listings).
    func identifier(_ path: VolumePath, file: FileID? = nil) -> Inode {
        lock.withLock { inode(path, file: file) }
    }

    /// The inode of `path` (a name of `file`, if linked), counting one reference its caller now holds.
    func reference(_ path: VolumePath, file: FileID? = nil) -> Inode {
        lock.withLock {
            let found = inode(path, file: file)
            references[found, default: 0] += 1
            return found
        }
    }

    /// Gives `path` a new inode at its next lookup; the old inode keeps resolving to `path` until its
    /// references are dropped. Returns the old inode.
    func detach(_ path: VolumePath) -> Inode? {
        lock.withLock { inodes.removeValue(forKey: path) }
    }

    /// `source` and everything beneath it now go by names under `target`; their inodes stay.
    func rename(_ source: VolumePath, to target: VolumePath) {
        lock.withLock {
            if let replaced = inodes.removeValue(forKey: target) { drop(target, of: replaced) }
            for (path, found) in inodes where path.isWithin(source) {
                let moved = VolumePath(trusted: target.rawValue + path.rawValue.dropFirst(source.rawValue.count))
                inodes[path] = nil
                inodes[moved] = found
                names[found] = names[found]?.map { $0 == path ? moved : $0 }
            }
        }
    }

    /// `path`'s inode lost its last name: it keeps `entry` (with no link) for as long as the kernel
    /// knows it, and `path` gets a new inode at its next lookup.
    func bury(_ path: VolumePath, as entry: Entry) {
        lock.withLock {
            guard let found = inodes[path], found != .root else { return }
            var ghost = entry
            ghost.linkCount = 0
            buried[found] = ghost
            inodes[path] = nil
        }
    }

    /// What a buried inode was, if `inode` is one.
    func buried(_ inode: Inode) -> Entry? {
        lock.withLock { buried[inode] }
    }

    /// New attributes of a buried inode.
    func rebury(_ inode: Inode, as entry: Entry) {
        lock.withLock { if buried[inode] != nil { buried[inode] = entry } }
    }

    /// `inode` (one with no name, or another file's) now goes by `path` as well, first.
    func name(_ inode: Inode, _ path: VolumePath) {
        lock.withLock {
            inodes[path] = inode
            names[inode, default: []].insert(path, at: 0)
        }
    }

    /// `path` is no longer a name of its inode, which other names keep (a hard link removed).
    func unlink(_ path: VolumePath) {
        lock.withLock {
            guard let found = inodes[path], let all = names[found], all.count > 1 else { return }
            inodes[path] = nil
            drop(path, of: found)
        }
    }

    /// `first` and `second`, and everything beneath each, swap names; their inodes stay.
    func exchange(_ first: VolumePath, _ second: VolumePath) {
        lock.withLock {
            var moved: [(VolumePath, VolumePath, Inode)] = []
            for (path, found) in inodes {
                if path.isWithin(first) {
                    moved.append((path, VolumePath(trusted: second.rawValue + path.rawValue.dropFirst(first.rawValue.count)), found))
                } else if path.isWithin(second) {
                    moved.append((path, VolumePath(trusted: first.rawValue + path.rawValue.dropFirst(second.rawValue.count)), found))
                }
            }
            for (path, _, _) in moved { inodes[path] = nil }
            for (path, target, found) in moved {
                inodes[target] = found
                names[found] = names[found]?.map { $0 == path ? target : $0 }
            }
        }
    }

    /// Drops `count` references to `inode`; with the last, the inode is gone.
    /// Returns whether the inode is gone.
    @discardableResult
    func forget(_ inode: Inode, references count: UInt64) -> Bool {
        lock.withLock {
            guard inode != .root, let held = references[inode] else { return false }
            if held > count {
                references[inode] = held - count
                return false
            } else {
                references[inode] = nil
                for path in names.removeValue(forKey: inode) ?? [] where inodes[path] == inode { inodes[path] = nil }
                if let file = fileOf.removeValue(forKey: inode), files[file] == inode { files[file] = nil }
                buried[inode] = nil
                return true
            }
        }
    }

    private func drop(_ path: VolumePath, of inode: Inode) {
        names[inode]?.removeAll { $0 == path }
        if names[inode]?.isEmpty == true { names[inode] = nil }
    }

    private func inode(_ path: VolumePath, file: FileID?) -> Inode {
        if let found = inodes[path] {
            if let file, files[file] == nil {
                files[file] = found
                fileOf[found] = file
            }
            return found
        }
        if let file, let found = files[file], names[found] != nil {
            // The name just met comes first: an earlier one may be gone (removed before this lookup).
            inodes[path] = found
            names[found]?.insert(path, at: 0)
            return found
        }
        let made = Inode(next)
        next += 1
        inodes[path] = made
        names[made] = [path]
        if let file {
            files[file] = made
            fileOf[made] = file
        }
        return made
    }
}
