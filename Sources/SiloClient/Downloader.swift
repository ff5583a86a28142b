#if canImport(Glibc)
import Glibc
#endif
import CSiloSystem
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
/// so an interrupted or failed get never leaves a truncated file under the real name. Nothing is ever
/// created outside the destination: every level beneath it is opened relative to its parent with
/// `O_NOFOLLOW` (a symlink already on the local disk is never followed), and each path is checked to
/// lie beneath the remote path asked for. Set-user-ID and set-group-ID bits are dropped unless the
/// caller asks to keep them, as `tar` does for users other than root.
public struct Downloader: Sendable {
    public let service: any VolumeService
    /// Keep the set-user-ID, set-group-ID and sticky bits of files as committed.
    public var preserveSpecialModeBits: Bool
    /// Give what is written the owners the volume records (only root may; others keep their own).
    public var restoreOwners: Bool { geteuid() == 0 }

    /// Files are read through this; without a reader of its own, one without a cache.
    public let reader: FileReader

    public init(service: any VolumeService, reader: FileReader? = nil, preserveSpecialModeBits: Bool = false) {
        self.service = service
        self.reader = reader ?? FileReader(service: service, memoryBlocks: 0)
        self.preserveSpecialModeBits = preserveSpecialModeBits
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
        case .socket:
            throw SiloError(.invalidArgument, "\(remote) is a socket, which lives in a mount only; there is nothing to get")
        case .file, .symlink, .fifo, .characterDevice, .blockDevice:
            try checkAbsent([destination], force: force)
            // The destination is the user's own choice of path: its directory is opened as given.
            let slash = destination.lastIndex(of: "/")
            let directory = slash.map { String(destination[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
            let name = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
            let parent = try FileIO.open(directory, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            defer { close(parent) }
            try await place(top, in: parent, name: name, shownAs: destination, progress: progress, total: top.size)
            return GetResult(destination: destination, files: 1, bytes: top.size)
        case .directory:
            let entries = try await service.tree(remote, in: volume, version: version)
            var relatives: [[String]] = []
            for entry in entries { relatives.append(try Self.relativeComponents(of: entry.path, beneath: remote)) }
            func local(_ components: [String]) -> String { ([destination] + components).joined(separator: "/") }
            let files = zip(entries, relatives).filter { $0.0.kind != .directory }
            try checkAbsent(files.map { local($0.1) }, force: force)
            if LocalFiles.exists(destination) && !LocalFiles.isDirectory(destination) {
                throw SiloError(.localFile, "cannot get directory \(remote) into \(destination): a file is there")
            }
            try FileIO.makeDirectories(destination, mode: 0o777)  // the user's own files: their umask decides
            let tree = try DestinationTree(root: destination)
            defer { tree.close() }
            let total = files.reduce(Int64(0)) { $0 + $1.0.size }
            var done: Int64 = 0
            // Where the first name of each file of several names went: later names are linked to it.
            var placed: [FileID: [String]] = [:]
            for (entry, components) in zip(entries, relatives) {
                switch entry.kind {
                case .directory:
                    _ = try tree.directory(components)
                case .socket:
                    continue
                case .file, .symlink, .fifo, .characterDevice, .blockDevice:
                    let before = done
                    let count = files.count
                    var fileProgress: TransferProgress.Handler?
                    if let progress {
                        fileProgress = { p in
                            progress(TransferProgress(filesDone: 0, filesTotal: count, bytesDone: before + p.bytesDone, bytesTotal: total))
                        }
                    }
                    let parent = try tree.directory(Array(components.dropLast()))
                    if entry.kind == .file, let file = entry.fileID {
                        if let first = placed[file] {
                            try link(local(components), to: first, in: tree, parent: parent, name: components.last!)
                            continue
                        }
                        placed[file] = components
                    }
                    try await place(entry, in: parent, name: components.last!, shownAs: local(components), progress: fileProgress, total: entry.size)
                    done += entry.size
                }
            }
            for (entry, components) in zip(entries, relatives).reversed() where entry.kind == .directory {
                let parent = try tree.directory(Array(components.dropLast()))
                restoreOwner(entry, parent, components.last!)
                let path = local(components)
                Self.restoreAttributes(entry) { name, value in silo_lsetxattr(path, name, value.baseAddress, UInt(value.count)) }
                setTimes(parent, components.last!, entry.mtimeNanoseconds)
            }
            return GetResult(destination: destination, files: files.count, bytes: total)
        }
    }

    /// The names leading from `remote` to `path`, each one checked again: a store or server that hands
    /// back a path outside `remote`, or with a name a path may not have, gets an error, not a write.
    static func relativeComponents(of path: VolumePath, beneath remote: VolumePath) throws -> [String] {
        guard path != remote, path.isWithin(remote), (try? VolumePath(path.rawValue)) == path else {
            throw SiloError(.corruptBlock, "the store listed \(path.description.escapedForDisplay) beneath \(remote), which cannot be; nothing was written for it")
        }
        let components = path.components
        let depth = remote.isRoot ? 0 : remote.components.count
        return Array(components[depth...])
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

    /// Makes `name` in the directory open at `parent` another name of the file already placed at
    /// `first` (a hard link), through a temporary name.
    private func link(_ destination: String, to first: [String], in tree: DestinationTree, parent: Int32, name: String) throws {
        let source = try tree.directory(Array(first.dropLast()))
        let temporary = name + ".silo-partial-\(getpid())"
        unlinkat(parent, temporary, 0)
        guard linkat(source, first.last!, parent, temporary, 0) == 0 else {
            throw FileIO.error(errno, "could not link \(destination) to the file it is another name of")
        }
        guard renameat(parent, temporary, parent, name) == 0 else {
            let code = errno
            unlinkat(parent, temporary, 0)
            throw FileIO.error(code, "could not move the link into place at \(destination)")
        }
    }

    /// Writes `entry` as `name` in the directory open at `parent`, through a temporary name.
    private func place(
        _ entry: Entry, in parent: Int32, name: String, shownAs destination: String, progress: TransferProgress.Handler?, total: Int64
    ) async throws {
        let temporary = name + ".silo-partial-\(getpid())"
        unlinkat(parent, temporary, 0)
        let mode = mode_t(entry.mode & (preserveSpecialModeBits ? 0o7777 : 0o0777))
        if entry.kind == .symlink {
            guard symlinkat(entry.symlinkTarget ?? "", parent, temporary) == 0 else {
                throw FileIO.error(errno, "could not create link \(destination)")
            }
            restoreOwner(entry, parent, temporary)
        } else if entry.kind == .fifo {
            guard mkfifoat(parent, temporary, mode & 0o777) == 0 else { throw FileIO.error(errno, "could not create the fifo \(destination)") }
            restoreOwner(entry, parent, temporary)
            fchmodat(parent, temporary, mode, 0)
        } else if entry.kind.isDevice {
            let type = entry.kind == .characterDevice ? S_IFCHR : S_IFBLK
            guard mknodat(parent, temporary, type | (mode & 0o777), dev_t(entry.device?.dev ?? 0)) == 0 else {
                let code = errno
                throw FileIO.error(code, code == EPERM
                    ? "could not create the device node \(destination): only root can; get it as root, or leave it out"
                    : "could not create the device node \(destination)")
            }
            restoreOwner(entry, parent, temporary)
            fchmodat(parent, temporary, mode, 0)
        } else {
            let fd = openat(parent, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0o777)
            guard fd >= 0 else { throw FileIO.error(errno, "could not create \(destination)") }
            do {
                defer { close(fd) }
                try await writeFile(entry, fd: fd, name: destination, progress: progress, total: total)
                // Owner first: a change of owner clears the set-user-ID and set-group-ID bits.
                restoreOwner(entry, parent, temporary)
                fchmod(fd, mode)
                Self.restoreAttributes(entry) { name, value in silo_fsetxattr(fd, name, value.baseAddress, UInt(value.count)) }
            } catch {
                unlinkat(parent, temporary, 0)
                throw error
            }
        }
        setTimes(parent, temporary, entry.mtimeNanoseconds)
        var existing = stat()
        if entry.kind == .file, fstatat(parent, name, &existing, AT_SYMLINK_NOFOLLOW) == 0, existing.st_mode & S_IFMT == S_IFDIR {
            unlinkat(parent, temporary, 0)
            throw SiloError(.localFile, "cannot write \(entry.path) to \(destination): a directory is there")
        }
        guard renameat(parent, temporary, parent, name) == 0 else {
            let code = errno
            unlinkat(parent, temporary, 0)
            throw FileIO.error(code, "could not move the downloaded file into place at \(destination)")
        }
    }

    private func writeFile(_ entry: Entry, fd: Int32, name: String, progress: TransferProgress.Handler?, total: Int64) async throws {
        var written: Int64 = 0
        try await reader.forEachChunk(of: entry, range: 0..<entry.size) { bytes in
            try bytes.withUnsafeBytes { try FileIO.writeAll(fd, $0, path: name) }
            written += Int64(bytes.count)
            progress?(TransferProgress(filesDone: 0, filesTotal: 1, bytesDone: written, bytesTotal: total))
        }
    }

    /// Sets the extended attributes the volume records for `entry` with `set`, where the destination
    /// allows: a disk without them, or `trusted.*` for an ordinary user, is skipped.
    private static func restoreAttributes(_ entry: Entry, _ set: (String, UnsafeRawBufferPointer) -> Int32) {
        for (name, value) in entry.extendedAttributes.sorted(by: { $0.key < $1.key }) {
            _ = value.withUnsafeBytes { set(name, $0) }
        }
    }

    /// Gives `name` in `directory` the owner the volume records for `entry`, as root; never follows a link.
    private func restoreOwner(_ entry: Entry, _ directory: Int32, _ name: String) {
        guard restoreOwners, let owner = entry.owner else { return }
        fchownat(directory, name, owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW)
    }

    /// Sets the modification (and access) time of `name` in `directory`, never following a link.
    private func setTimes(_ directory: Int32, _ name: String, _ nanoseconds: Int64) {
        let (seconds, rest) = nanoseconds.quotientAndRemainder(dividingBy: 1_000_000_000)
        let time = rest >= 0 ? timespec(tv_sec: Int(seconds), tv_nsec: Int(rest)) : timespec(tv_sec: Int(seconds) - 1, tv_nsec: Int(rest) + 1_000_000_000)
        let times = [time, time]
        utimensat(directory, name, times, AT_SYMLINK_NOFOLLOW)
    }
}

/// The directories beneath a download's destination, each opened relative to its parent with
/// `O_NOFOLLOW` (and created when missing), so no symlink on the local disk can lead a write elsewhere.
final class DestinationTree {
    /// Keyed by the path's bytes: `[String]` keys would merge an NFC and an NFD name.
    private var open: [[UInt8]: Int32] = [:]
    private let root: String

    init(root: String) throws {
        self.root = root
        open[[]] = try FileIO.open(root, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    }

    /// The descriptor of the directory at `components` beneath the root, made if missing.
    func directory(_ components: [String]) throws -> Int32 {
        let key = Array(components.joined(separator: "/").utf8)
        if let fd = open[key] { return fd }
        let parent = try directory(Array(components.dropLast()))
        let name = components.last!
        var fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 && errno == ENOENT {
            if mkdirat(parent, name, 0o777) != 0 && errno != EEXIST {
                throw FileIO.error(errno, "could not create directory \(shown(components))")
            }
            fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        }
        guard fd >= 0 else {
            if errno == ELOOP || errno == ENOTDIR {
                throw SiloError(.localFile, "cannot write beneath \(shown(components)): it is not a directory (a symlink or file is there); move it away first")
            }
            throw FileIO.error(errno, "could not open directory \(shown(components))")
        }
        open[key] = fd
        return fd
    }

    private func shown(_ components: [String]) -> String { ([root] + components).joined(separator: "/") }

    func close() {
        for fd in open.values { Glibc.close(fd) }
        open = [:]
    }
}
