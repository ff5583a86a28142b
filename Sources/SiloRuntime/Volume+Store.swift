import Foundation
import SiloClient
import SiloCore

#if canImport(Glibc)
import Glibc
#endif

/// A path in a volume as ``Volume/iterdir(_:recursive:version:)`` lists it: where it is (relative to
/// the volume's root), what it is, when it was last modified (seconds since the epoch) and its size.
public struct FileEntry: Sendable, Hashable {
    public var path: String
    public var type: EntryKind
    public var mtime: Int64
    public var size: Int64

    init(_ entry: Entry) {
        path = entry.path.rawValue
        type = entry.kind
        mtime = entry.mtimeNanoseconds / 1_000_000_000
        size = entry.size
    }
}

/// What a ``Volume/batchUpload(force:_:)`` puts, in one commit.
public struct BatchUpload: Sendable {
    enum Source: Sendable {
        case file(String)
        case bytes([UInt8])
    }

    var files: [(remote: VolumePath, source: Source)] = []

    /// Puts the local file at `local` at `remote` (a remote path ending in `/` takes its name).
    public mutating func putFile(_ local: String, at remote: String) throws {
        let target = remote.hasSuffix("/") ? remote + LocalName.of(local) : remote
        files.append((try VolumePath(target), .file(local)))
    }

    /// Puts `bytes` as a file at `remote`.
    public mutating func putFile(bytes: [UInt8], at remote: String) throws {
        files.append((try VolumePath(remote), .bytes(bytes)))
    }

    /// Puts the files a local directory holds, at and beneath `remote` (its contents, not the
    /// directory itself inside it).
    public mutating func putDirectory(_ local: String, at remote: String) throws {
        let root = try VolumePath(remote)
        guard let walker = FileManager.default.enumerator(atPath: local) else {
            throw SiloError(.localFile, "cannot read the directory \(local)")
        }
        for case let relative as String in walker {
            var isDirectory: ObjCBool = false
            let path = local + "/" + relative
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            files.append((try root.appending(relative), .file(path)))
        }
    }
}

enum LocalName {
    static func of(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}

extension Volume {
    /// The volume called `name` in `service`'s store, made first (empty) if it does not exist and
    /// `createIfMissing`; reads show `version` when given (else the latest).
    public static func fromName(
        _ name: String, createIfMissing: Bool = false, service: any VolumeService, version: Version? = nil
    ) async throws -> Volume {
        let name = try VolumeName(name)
        if createIfMissing {
            _ = try await service.createVolumeIfMissing(name, kind: .snapshot)
        } else {
            _ = try await service.volume(name)
        }
        return Volume(name: name, mount: nil, service: service, version: version, isReadOnly: false)
    }

    /// Runs `body` with a new volume, deleted with all it holds when `body` ends.
    public static func ephemeral<R: Sendable>(service: any VolumeService, _ body: (Volume) async throws -> R) async throws -> R {
        let name = try VolumeName("ephemeral-\(UUID().uuidString.prefix(12).lowercased())")
        _ = try await service.createVolume(name)
        let volume = Volume(name: name, mount: nil, service: service, version: nil, isReadOnly: false)
        do {
            let result = try await body(volume)
            try await service.deleteVolume(name)
            return result
        } catch {
            try? await service.deleteVolume(name)
            throw error
        }
    }

    /// This volume, refusing changes (for reads, and to attach read-only).
    public func readOnly() -> Volume {
        Volume(name: name, mount: mount, service: service, version: version, isReadOnly: true)
    }

    private func store() throws -> any VolumeService {
        guard let service else {
            throw SiloError(.invalidArgument, "this Volume was found by its mount; use Volume.fromName(_:service:) to reach its store")
        }
        return service
    }

    private func writableStore() throws -> any VolumeService {
        guard !isReadOnly else {
            throw SiloError(.invalidArgument, "volume '\(name)' was given read-only here; use Volume.fromName(\"\(name)\", service:) to change it")
        }
        return try store()
    }

    /// What `path` holds (a file: itself), everything beneath it when `recursive`.
    public func iterdir(_ path: String = "/", recursive: Bool = true, version: Version? = nil) async throws -> [FileEntry] {
        let service = try store()
        let path = try VolumePath(path)
        let version = version ?? self.version
        guard let top = try await service.entry(at: path, in: name, version: version) else {
            throw SiloError(.pathNotFound, "\(path) does not exist in volume '\(name)'")
        }
        guard top.kind == .directory else { return [FileEntry(top)] }
        let entries = recursive ? try await service.tree(path, in: name, version: version) : try await service.list(path, in: name, version: version)
        return entries.map(FileEntry.init)
    }

    /// A file's bytes, `chunk` at a time as they are read.
    public func readFile(_ path: String, version: Version? = nil, chunk: Int = 1 << 20) -> AsyncThrowingStream<[UInt8], any Error> {
        let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        let task = Task { [self] in
            do {
                let service = try store()
                let path = try VolumePath(path)
                let version = version ?? self.version
                guard let entry = try await service.entry(at: path, in: name, version: version), entry.kind == .file else {
                    throw SiloError(.pathNotFound, "\(path) is not a file in volume '\(name)'")
                }
                var offset: Int64 = 0
                while offset < entry.size {
                    let end = min(entry.size, offset + Int64(max(1, chunk)))
                    continuation.yield(try await service.read(path, in: name, version: entry.version, range: offset..<end))
                    offset = end
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Removes `path` (a directory only with `recursive`), as one commit.
    @discardableResult
    public func removeFile(_ path: String, recursive: Bool = false, author: String = "swift") async throws -> CommitResult {
        try await writableStore().commit(Changeset([.remove(try VolumePath(path), recursive: recursive)]), to: name, options: CommitOptions(author: author))
    }

    /// Copies within the volume, as one commit that moves no data: several sources, or a destination
    /// ending in `/` or naming a directory, go inside it.
    @discardableResult
    public func copyFiles(_ sources: [String], to destination: String, author: String = "swift") async throws -> CommitResult {
        try await writableStore().copy(
            try sources.map { try VolumePath($0) }, to: try VolumePath(destination), into: destination.hasSuffix("/"), in: name,
            options: CommitOptions(author: author))
    }

    /// Puts what `fill` adds to the upload in one commit. Without `force`, a path that exists
    /// already fails the whole upload (`pathExists`/`conflict`) and nothing is put.
    @discardableResult
    public func batchUpload(force: Bool = false, author: String = "swift", _ fill: (inout BatchUpload) throws -> Void) async throws -> CommitResult {
        let service = try writableStore()
        var upload = BatchUpload()
        try fill(&upload)
        guard !upload.files.isEmpty else { throw SiloError(.invalidArgument, "the upload puts nothing") }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("silo-upload-\(UUID().uuidString)").path
        guard mkdir(scratch, 0o700) == 0 else { throw SiloError(.localFile, "cannot create \(scratch): \(String(cString: strerror(errno)))") }
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var locals: [String] = []
        for (index, file) in upload.files.enumerated() {
            switch file.source {
            case .file(let path): locals.append(path)
            case .bytes(let bytes):
                let path = scratch + "/\(index)"
                guard FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o644]) else {
                    throw SiloError(.localFile, "cannot stage the bytes for \(file.remote)")
                }
                locals.append(path)
            }
        }
        let uploaded = try await Uploader(service: service).uploadContents(of: locals)
        var builder = ChangesetBuilder()
        for (file, local) in zip(upload.files, locals) {
            guard let content = uploaded[local] else { throw SiloError(.io, "\(local) was not uploaded") }
            var info = stat()
            guard stat(local, &info) == 0 else { throw SiloError(.localFile, "cannot read \(local)") }
            let put = FilePut(
                content: content.content, size: content.size, mode: UInt32(info.st_mode) & 0o7777,
                mtimeNanoseconds: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
            builder.file(file.remote, put, precondition: force ? nil : .absent)
        }
        return try await service.commit(builder.changeset, to: name, options: CommitOptions(author: author))
    }
}
