#if canImport(Glibc)
import Glibc
#endif
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
}

enum LocalFiles {
    static func lstatItem(_ path: String, relative: [String]) throws -> LocalItem? {
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
            return LocalItem(
                path: path, relative: relative, kind: .file, size: Int64(info.st_size), mode: mode, mtimeNanoseconds: mtime, owner: owner)
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
        default:
            return nil  // sockets and devices: not content
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
