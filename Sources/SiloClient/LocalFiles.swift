#if canImport(Glibc)
import Glibc
#endif
import CSiloSystem
import SiloCore
import SiloStore

/// A file, directory or symlink found on the local disk for an upload.
struct LocalItem: Sendable {
    var path: String
    /// Where it goes, relative to the upload's target.
    var relative: [String]
    var kind: EntryKind
    var size: Int64
    var mode: UInt32
    var mtimeNanoseconds: Int64
    var symlinkTarget: String?
    /// The local file's owner, which the volume records.
    var owner: Owner?
    /// Its extended attributes in the namespaces a volume keeps (those this user can read).
    var extendedAttributes: ExtendedAttributes = [:]
    /// For a regular file with several names (hard links): which local file it is, so that an upload
    /// stores it once and records its names as one file.
    var identity: LocalIdentity?
    /// A device node's number.
    var device: DeviceNumber?
}

/// A local file's identity on its machine: its device and inode numbers.
struct LocalIdentity: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64
}

enum LocalFiles {
    /// The extended attributes of `path` (not following a final symlink) that a volume keeps: none
    /// where the file system has none.
    static func extendedAttributes(of path: String) throws -> ExtendedAttributes {
        var size = silo_llistxattr(path, nil, 0)
        guard size > 0 else { return [:] }  // none, or a file system without them
        var list = [CChar](repeating: 0, count: Int(size))
        size = silo_llistxattr(path, &list, UInt(list.count))
        guard size > 0 else { return [:] }
        var attributes: ExtendedAttributes = [:]
        let names = list[..<Int(size)].split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        for name in names where ExtendedAttributeLimits.namespaces.contains(where: { name.hasPrefix($0) }) {
            let length = silo_lgetxattr(path, name, nil, 0)
            guard length >= 0 else { continue }  // not readable by this user (trusted.*): left out
            var value = [UInt8](repeating: 0, count: Int(length))
            let read = silo_lgetxattr(path, name, &value, UInt(value.count))
            guard read >= 0 else { continue }
            attributes[name] = Array(value[..<Int(read)])
        }
        guard let volumePath = try? VolumePath(String(path.split(separator: "/").last ?? "x")) else { return attributes }
        do {
            try ExtendedAttributeLimits.validate(attributes, at: volumePath)
        } catch {
            throw SiloError(error.code, "\(path): its extended attributes are more than a volume keeps (\(error.message))")
        }
        return attributes
    }

    /// What is at `path`, with its extended attributes; nil for what is not content (sockets, devices).
    static func lstatItem(_ path: String, relative: [String]) throws -> LocalItem? {
        guard var item = try lstatKind(path, relative: relative) else { return nil }
        item.extendedAttributes = try extendedAttributes(of: path)
        return item
    }

    private static func lstatKind(_ path: String, relative: [String]) throws -> LocalItem? {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { throw SiloError(.localFile, "\(path): no such file or directory") }
            throw FileIO.error(errno, "could not read \(path)")
        }
        let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        let mode = UInt32(info.st_mode) & 0o7777
        let owner = Owner(uid: info.st_uid, gid: info.st_gid)
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            var item = LocalItem(
                path: path, relative: relative, kind: .file, size: Int64(info.st_size), mode: mode, mtimeNanoseconds: mtime, owner: owner)
            if info.st_nlink > 1 { item.identity = LocalIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)) }
            return item
        case S_IFDIR:
            return LocalItem(path: path, relative: relative, kind: .directory, size: 0, mode: mode, mtimeNanoseconds: mtime, owner: owner)
        case S_IFLNK:
            var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = readlink(path, &buffer, buffer.count - 1)
            guard count >= 0 else { throw FileIO.error(errno, "could not read link \(path)") }
            let target = String(decoding: buffer[..<count], as: UTF8.self)
            return LocalItem(
                path: path, relative: relative, kind: .symlink, size: Int64(count), mode: 0o777, mtimeNanoseconds: mtime,
                symlinkTarget: target, owner: owner
            )
        case S_IFIFO:
            return LocalItem(path: path, relative: relative, kind: .fifo, size: 0, mode: mode, mtimeNanoseconds: mtime, owner: owner)
        case S_IFCHR, S_IFBLK:
            var item = LocalItem(
                path: path, relative: relative, kind: info.st_mode & S_IFMT == S_IFCHR ? .characterDevice : .blockDevice, size: 0, mode: mode,
                mtimeNanoseconds: mtime, owner: owner)
            item.device = DeviceNumber(dev: UInt64(info.st_rdev))
            return item
        default:
            return nil  // sockets: not content
        }
    }

    /// The item at `path` and, for a directory, everything beneath it, parents before children.
    static func scan(_ path: String, skipped: inout [String]) throws -> [LocalItem] {
        guard let top = try lstatItem(path, relative: []) else {
            throw SiloError(.localFile, "\(path) is not a regular file, directory or symlink")
        }
        var items = [top]
        if top.kind == .directory { try walk(path, relative: [], into: &items, skipped: &skipped) }
        return items
    }

    private static func walk(_ directory: String, relative: [String], into items: inout [LocalItem], skipped: inout [String]) throws {
        for name in try names(in: directory) {
            let child = directory + "/" + name
            guard let item = try lstatItem(child, relative: relative + [name]) else {
                skipped.append(child)
                continue
            }
            items.append(item)
            if item.kind == .directory { try walk(child, relative: item.relative, into: &items, skipped: &skipped) }
        }
    }

    static func names(in directory: String) throws -> [String] {
        guard let dir = opendir(directory) else { throw FileIO.error(errno, "could not list \(directory)") }
        defer { closedir(dir) }
        var names: [String] = []
        while let item = readdir(dir) {
            let name = withUnsafeBytes(of: item.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    static func baseName(_ path: String) -> String {
        let trimmed = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        return trimmed.split(separator: "/").last.map(String.init) ?? trimmed
    }
}
