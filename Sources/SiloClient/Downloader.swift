#if canImport(Glibc)
import Glibc
#endif
import SiloCore
import SiloStore

/// What `get` did.
public struct GetResult: Sendable {
    public var destination: String
    public var files: Int
    public var bytes: Int64
}

/// Copies a file or directory out of a volume onto the local disk (or a file to standard output).
///
/// Each file is written to a temporary name beside its destination and renamed into place when whole,
/// so an interrupted or failed get never leaves a truncated file under the real name.
public struct Downloader: Sendable {
    public let service: any VolumeService

    public init(service: any VolumeService) {
        self.service = service
    }

    /// `get NAME REMOTE [LOCAL]`: LOCAL defaults to `./basename(REMOTE)` (the volume's name for its
    /// root); an existing local directory receives `LOCAL/basename(REMOTE)`; `-` means standard output.
    public func get(
        _ remote: VolumePath,
        in volume: VolumeName,
        version: Version?,
        to local: String?,
        force: Bool,
        progress: TransferProgress.Handler? = nil
    ) async throws -> GetResult {
        guard let top = try await service.entry(at: remote, in: volume, version: version) else {
            throw SiloError(.pathNotFound, "\(remote) does not exist in volume '\(volume)'\(version.map { " at version \($0)" } ?? "")")
        }
        let base = remote.isRoot ? volume.rawValue : remote.name
        if local == "-" {
            guard top.kind == .file else {
                throw SiloError(.isADirectory, "\(remote) is a \(top.kind.rawValue); only a file can be written to standard output")
            }
            try await writeFile(top, fd: STDOUT_FILENO, name: "standard output", progress: progress, total: top.size)
            return GetResult(destination: "-", files: 1, bytes: top.size)
        }
        var destination = local ?? base
        if let local, LocalFiles.isDirectory(local) {
            destination = local + "/" + base
        }
        switch top.kind {
        case .file, .symlink:
            try checkAbsent([destination], force: force)
            try await place(top, at: destination, progress: progress, total: top.size)
            return GetResult(destination: destination, files: 1, bytes: top.size)
        case .directory:
            let entries = try await service.tree(remote, in: volume, version: version)
            let prefix = remote.isRoot ? 0 : remote.rawValue.utf8.count + 1
            func local(_ entry: Entry) -> String { destination + "/" + String(entry.path.rawValue.utf8.dropFirst(prefix))! }
            let files = entries.filter { $0.kind != .directory }
            try checkAbsent(files.map(local), force: force)
            if LocalFiles.exists(destination) && !LocalFiles.isDirectory(destination) {
                throw SiloError(.localFile, "cannot get directory \(remote) into \(destination): a file is there")
            }
            try FileIO.makeDirectories(destination)
            let total = files.reduce(Int64(0)) { $0 + $1.size }
            var done: Int64 = 0
            for entry in entries {
                switch entry.kind {
                case .directory:
                    try FileIO.makeDirectories(local(entry))
                case .file, .symlink:
                    let before = done
                    let count = files.count
                    var fileProgress: TransferProgress.Handler?
                    if let progress {
                        fileProgress = { p in
                            progress(TransferProgress(filesDone: 0, filesTotal: count, bytesDone: before + p.bytesDone, bytesTotal: total))
                        }
                    }
                    try await place(entry, at: local(entry), progress: fileProgress, total: entry.size)
                    done += entry.size
                }
            }
            for entry in entries.reversed() where entry.kind == .directory {
                setTimes(local(entry), entry.mtimeNanoseconds, followLinks: true)
            }
            return GetResult(destination: destination, files: files.count, bytes: total)
        }
    }

    private func checkAbsent(_ paths: [String], force: Bool) throws {
        guard !force else { return }
        let clashes = paths.filter(LocalFiles.exists)
        guard clashes.isEmpty else {
            throw SiloError(
                .pathExists,
                clashes.count == 1
                    ? "\(clashes[0]) already exists; pass --force to overwrite it"
                    : "\(clashes.count) local files already exist (first: \(clashes[0])); pass --force to overwrite them"
            )
        }
    }

    private func place(_ entry: Entry, at destination: String, progress: TransferProgress.Handler?, total: Int64) async throws {
        let temporary = destination + ".silo-partial-\(getpid())"
        unlink(temporary)
        if entry.kind == .symlink {
            guard symlink(entry.symlinkTarget ?? "", temporary) == 0 else { throw FileIO.error(errno, "could not create link \(destination)") }
        } else {
            let fd = try FileIO.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: mode_t(entry.mode & 0o7777))
            do {
                defer { close(fd) }
                try await writeFile(entry, fd: fd, name: destination, progress: progress, total: total)
                fchmod(fd, mode_t(entry.mode & 0o7777))
            } catch {
                unlink(temporary)
                throw error
            }
        }
        setTimes(temporary, entry.mtimeNanoseconds, followLinks: false)
        if entry.kind == .file && LocalFiles.isDirectory(destination) {
            unlink(temporary)
            throw SiloError(.localFile, "cannot write \(entry.path) to \(destination): a directory is there")
        }
        guard rename(temporary, destination) == 0 else {
            let code = errno
            unlink(temporary)
            throw FileIO.error(code, "could not move the downloaded file into place at \(destination)")
        }
    }

    private func writeFile(_ entry: Entry, fd: Int32, name: String, progress: TransferProgress.Handler?, total: Int64) async throws {
        var written: Int64 = 0
        try await service.forEachChunk(of: entry, range: 0..<entry.size) { bytes in
            try bytes.withUnsafeBytes { try FileIO.writeAll(fd, $0, path: name) }
            written += Int64(bytes.count)
            progress?(TransferProgress(filesDone: 0, filesTotal: 1, bytesDone: written, bytesTotal: total))
        }
    }

    private func setTimes(_ path: String, _ nanoseconds: Int64, followLinks: Bool) {
        let time = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        let times = [time, time]
        utimensat(AT_FDCWD, path, times, followLinks ? 0 : AT_SYMLINK_NOFOLLOW)
    }
}
