import Foundation
import SiloCore
import SiloMount

#if canImport(Glibc)
import Glibc
#endif

/// A mount as a program uses it, by path: each call walks the names from the root with lookups and
/// opens, reads, writes and releases files the way the kernel would on the program's behalf.
protocol MountUnderTest: Sendable {
    var fileSystem: VolumeFileSystem { get }
    /// Writes `bytes` at `offset` of an existing file, opened for writing without truncation.
    func write(_ path: String, at offset: Int, _ bytes: [UInt8]) async throws
}

extension MountUnderTest {
    func write(_ path: String, at offset: Int, _ bytes: [UInt8]) async throws {
        let inode = try await resolve(path)
        let opened = try await fileSystem.open(inode, writing: true, truncate: false)
        try await put(bytes, at: offset, into: inode, opened)
    }

    /// Creates the file, or empties it (`O_TRUNC`), and writes `bytes`.
    func overwrite(_ path: String, _ bytes: [UInt8]) async throws {
        let (parent, name) = try await parentAndName(path)
        let inode: Inode
        let opened: OpenFile
        if let existing = try? await fileSystem.lookup(name, in: parent) {
            inode = existing.inode
            opened = try await fileSystem.open(inode, writing: true, truncate: true)
        } else {
            let created = try await fileSystem.create(name, in: parent, mode: 0o644)
            inode = created.0.inode
            opened = created.1
        }
        try await put(bytes, at: 0, into: inode, opened)
    }

    /// Writes and closes as the kernel does: a FLUSH at `close`, then the RELEASE, then (for a shared
    /// mount) letting go of the committed copy.
    private func put(_ bytes: [UInt8], at offset: Int, into inode: Inode, _ opened: OpenFile) async throws {
        let written: Int
        do {
            written = try bytes.withUnsafeBytes { try fileSystem.write(inode, handle: opened.handle, offset: UInt64(offset), bytes: $0) }
            try await fileSystem.flush(inode, handle: opened.handle)
        } catch {
            if let fd = opened.backingFile { close(fd) }
            fileSystem.release(inode, handle: opened.handle)
            throw error
        }
        if let fd = opened.backingFile { close(fd) }
        fileSystem.release(inode, handle: opened.handle)
        try await fileSystem.settle(inode)
        guard written == bytes.count else { throw SiloError(.io, "wrote \(written) of \(bytes.count) bytes") }
    }

    /// The whole file, read as a served open reads it, and, when the open came with a backing file
    /// (what the kernel would read instead), that file too: both must hold the same bytes.
    func read(_ path: String) async throws -> [UInt8] {
        let inode = try await resolve(path)
        let opened = try await fileSystem.open(inode, writing: false, truncate: false)
        defer {
            if let fd = opened.backingFile { close(fd) }
            fileSystem.release(inode, handle: opened.handle)
        }
        var bytes: [UInt8] = []
        while true {
            let chunk =
                opened.handle != 0
                ? try fileSystem.readLocal(opened.handle, offset: UInt64(bytes.count), size: 128 * 1024)
                : try await fileSystem.read(inode, offset: UInt64(bytes.count), size: 128 * 1024)
            if chunk.isEmpty { break }
            bytes += chunk
        }
        if let fd = opened.backingFile {
            var backing = [UInt8](repeating: 0, count: bytes.count + 1)
            let count = backing.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
            guard count == bytes.count, same(Array(backing.prefix(count)), bytes) else {
                throw SiloError(.io, "the backing file of \(path) holds \(count) bytes that differ from the \(bytes.count) served")
            }
        }
        return bytes
    }

    func truncate(_ path: String, to size: Int) async throws {
        _ = try await fileSystem.setAttributes(try await resolve(path), size: UInt64(size))
    }

    func chmod(_ path: String, _ mode: UInt32) async throws {
        _ = try await fileSystem.setAttributes(try await resolve(path), mode: mode)
    }

    func unlink(_ path: String) async throws {
        let (parent, name) = try await parentAndName(path)
        try await fileSystem.remove(name, in: parent, directory: false)
    }

    func rmdir(_ path: String) async throws {
        let (parent, name) = try await parentAndName(path)
        try await fileSystem.remove(name, in: parent, directory: true)
    }

    func mkdir(_ path: String) async throws {
        let (parent, name) = try await parentAndName(path)
        _ = try await fileSystem.makeDirectory(name, in: parent, mode: 0o755)
    }

    func symlink(_ path: String, to target: String) async throws {
        let (parent, name) = try await parentAndName(path)
        _ = try await fileSystem.makeSymlink(name, in: parent, target: target)
    }

    func rename(_ source: String, to target: String) async throws {
        let (from, name) = try await parentAndName(source)
        let (to, newName) = try await parentAndName(target)
        try await fileSystem.rename(name, in: from, to: newName, in: to)
    }

    func link(_ source: String, as target: String) async throws {
        let (parent, name) = try await parentAndName(target)
        _ = try await fileSystem.link(try await resolve(source), as: name, in: parent)
    }

    func exchange(_ first: String, _ second: String) async throws {
        let (from, name) = try await parentAndName(first)
        let (to, newName) = try await parentAndName(second)
        try await fileSystem.exchange(name, in: from, with: newName, in: to)
    }

    func readLink(_ path: String) async throws -> String {
        try await fileSystem.readLink(try await resolve(path))
    }

    func stat(_ path: String) async throws -> Entry {
        try await fileSystem.node(try await resolve(path)).entry
    }

    /// A directory's names and what each is.
    func list(_ path: String) async throws -> [String: EntryKind] {
        let items = try await fileSystem.list(try await resolve(path))
        return Dictionary(items.map { ($0.name, $0.kind) }, uniquingKeysWith: { first, _ in first })
    }

    func resolve(_ path: String) async throws -> Inode {
        var inode = Inode.root
        for name in path.split(separator: "/") {
            inode = try await fileSystem.lookup(String(name), in: inode).inode
        }
        return inode
    }

    private func parentAndName(_ path: String) async throws -> (Inode, String) {
        var parts = path.split(separator: "/").map(String.init)
        let name = parts.removeLast()
        return (try await resolve(parts.joined(separator: "/")), name)
    }
}

/// The file system as it is.
struct Mount: MountUnderTest {
    let fileSystem: VolumeFileSystem
}

/// A file system whose writes at an offset land one byte further on: the model test must catch it.
struct MountWithShiftedWrites: MountUnderTest {
    let fileSystem: VolumeFileSystem

    func write(_ path: String, at offset: Int, _ bytes: [UInt8]) async throws {
        try await Mount(fileSystem: fileSystem).write(path, at: offset == 0 ? 0 : offset + 1, bytes)
    }
}
