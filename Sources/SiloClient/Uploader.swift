#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SiloCore
import SiloStore

/// What `put` did.
public struct PutResult: Sendable {
    public var target: VolumePath
    public var files: Int
    public var bytes: Int64
    public var commit: CommitResult
    /// Local paths left out because they are not files, directories or symlinks.
    public var skipped: [String]
}

/// Puts a local file or directory into a volume as one commit.
///
/// Small files travel inline in the commit; larger ones are cut into blocks that several workers read,
/// hash and upload at once, each reusing one buffer, and only blocks the store lacks are sent.
public struct Uploader: Sendable {
    public let service: any VolumeService
    public var layout: BlockLayout
    public var workers: Int

    public init(service: any VolumeService, layout: BlockLayout = BlockLayout(), workers: Int = 2) {
        self.service = service
        self.layout = layout
        self.workers = max(1, workers)
    }

    /// Where `put LOCAL [REMOTE]` lands. A directory's contents: at REMOTE itself (`/basename(LOCAL)`
    /// without REMOTE). A file: at REMOTE, or REMOTE/basename(LOCAL) when REMOTE ends in `/` or is an
    /// existing directory; `/basename(LOCAL)` without REMOTE.
    public func resolveTarget(local: String, remote: String?, in volume: VolumeName) async throws -> VolumePath {
        let base = LocalFiles.baseName(local)
        // A directory's contents go at the remote path itself, every time, as Modal's `volume put`
        // places them: a put run again updates the same files instead of nesting a copy inside.
        if (try? LocalFiles.lstatItem(local, relative: []))??.kind == .directory { return try VolumePath(remote ?? base) }
        guard let remote else { return try VolumePath(base) }
        let path = try VolumePath(remote)
        if remote.hasSuffix("/") || path.isRoot { return try path.appending(base) }
        if try await service.entry(at: path, in: volume, version: nil)?.kind == .directory {
            return try path.appending(base)
        }
        return path
    }

    public func put(
        local: String,
        to target: VolumePath,
        in volume: VolumeName,
        force: Bool,
        options: CommitOptions,
        progress: TransferProgress.Handler? = nil
    ) async throws -> PutResult {
        var skipped: [String] = []
        let items = try LocalFiles.scan(local, skipped: &skipped)
        let existing = try await existingEntries(under: target, in: volume)
        try checkClashes(items: items, target: target, existing: existing, force: force)

        // A file under several names here is read and stored once, and recorded as one file.
        var seen = Set<LocalIdentity>()
        let files = items.filter { $0.kind == .file && ($0.identity.map { seen.insert($0).inserted } ?? true) }
        let total = TransferProgress(filesDone: 0, filesTotal: files.count, bytesDone: 0, bytesTotal: files.reduce(0) { $0 + $1.size })
        let contents = try await upload(files, total: total, progress: progress)
        var linked: [LocalIdentity: (FileContent, FileID)] = [:]

        var builder = ChangesetBuilder()
        var fileIndex = 0
        for item in items {
            let path = try item.relative.reduce(target) { try $0.appending($1) }
            switch item.kind {
            case .directory:
                builder.directory(path, mode: item.mode, mtimeNanoseconds: item.mtimeNanoseconds, owner: item.owner)
            case .symlink:
                builder.symlink(path, target: item.symlinkTarget ?? "", mtimeNanoseconds: item.mtimeNanoseconds, owner: item.owner)
            case .fifo:
                builder.fifo(path, mode: item.mode, mtimeNanoseconds: item.mtimeNanoseconds, owner: item.owner)
            case .characterDevice, .blockDevice:
                builder.device(
                    path, kind: item.kind, number: item.device ?? DeviceNumber(major: 0, minor: 0), mode: item.mode,
                    mtimeNanoseconds: item.mtimeNanoseconds, owner: item.owner)
            case .socket:
                continue  // never found: a socket is not content
            case .file:
                var content: FileContent
                var fileID: FileID?
                if let identity = item.identity, let known = linked[identity] {
                    (content, fileID) = known
                } else {
                    content = contents[fileIndex]
                    fileIndex += 1
                    if let identity = item.identity {
                        fileID = FileID.random()
                        linked[identity] = (content, fileID!)
                    }
                }
                let file = FilePut(
                    content: content, size: item.size, mode: item.mode, mtimeNanoseconds: item.mtimeNanoseconds, owner: item.owner, fileID: fileID)
                // Without --force the file must still be absent when the commit applies, not only when we looked.
                builder.file(path, file, precondition: force ? nil : .absent)
            }
            builder.extendedAttributes(path, item.extendedAttributes)
        }
        let commit = try await service.commit(builder.changeset, to: volume, options: options)
        // Every name counts as a file; a linked file's bytes count once, as they were read once.
        let names = items.filter { $0.kind == .file }.count
        return PutResult(target: target, files: names, bytes: total.bytesTotal, commit: commit, skipped: skipped)
    }

    /// The entries at and beneath `target` today, by path.
    private func existingEntries(under target: VolumePath, in volume: VolumeName) async throws -> [VolumePath: Entry] {
        guard let top = try await service.entry(at: target, in: volume, version: nil) else { return [:] }
        var result = [target: top]
        if top.kind == .directory {
            for entry in try await service.tree(target, in: volume, version: nil) { result[entry.path] = entry }
        }
        return result
    }

    private func checkClashes(items: [LocalItem], target: VolumePath, existing: [VolumePath: Entry], force: Bool) throws {
        var overwritten: [VolumePath] = []
        for item in items {
            let path = try item.relative.reduce(target) { try $0.appending($1) }
            guard let entry = existing[path] else { continue }
            switch (item.kind, entry.kind) {
            case (.directory, .directory):
                continue
            case (.directory, _):
                throw SiloError(.notADirectory, "cannot put directory \(item.path) at \(path): a \(entry.kind.rawValue) is there; remove it first")
            case (_, .directory):
                throw SiloError(.isADirectory, "cannot put \(item.path) at \(path): a directory is there; remove it first or put into it")
            default:
                overwritten.append(path)
            }
        }
        if !overwritten.isEmpty && !force {
            let first = overwritten.sorted()[0]
            throw SiloError(
                .pathExists,
                overwritten.count == 1
                    ? "\(first) already exists in the volume; pass --force to overwrite it"
                    : "\(overwritten.count) files already exist in the volume (first: \(first)); pass --force to overwrite them",
                paths: overwritten.map(\.description)
            )
        }
    }

    // MARK: Uploading content

    private final class Plan: Sendable {
        struct Job: Sendable {
            var file: Int
            var block: Int
        }

        struct State {
            var next = 0
            var hashes: [[BlockHash?]]
            var done: TransferProgress
            var blocksLeft: [Int]
        }

        let files: [LocalItem]
        let jobs: [Job]
        let state: Mutex<State>

        init(files: [LocalItem], jobs: [Job], hashes: [[BlockHash?]], total: TransferProgress) {
            self.files = files
            self.jobs = jobs
            self.state = Mutex(State(hashes: hashes, done: total, blocksLeft: hashes.map(\.count)))
        }

        func take() -> Job? {
            state.withLock { state in
                guard state.next < jobs.count else { return nil }
                defer { state.next += 1 }
                return jobs[state.next]
            }
        }

        func finish(_ job: Job, hash: BlockHash, bytes: Int) -> TransferProgress {
            state.withLock { state in
                state.hashes[job.file][job.block] = hash
                state.done.bytesDone += Int64(bytes)
                state.blocksLeft[job.file] -= 1
                if state.blocksLeft[job.file] == 0 { state.done.filesDone += 1 }
                return state.done
            }
        }
    }

    /// Uploads what the store lacks of local files and returns each one's content and size as they were
    /// read, keyed by local path: for callers that build their own changeset (a mount's commit).
    public func uploadContents(of paths: [String]) async throws -> [String: (content: FileContent, size: Int64)] {
        var items: [LocalItem] = []
        for path in paths {
            guard let item = try LocalFiles.lstatItem(path, relative: []), item.kind == .file else {
                throw SiloError(.localFile, "\(path) is not a regular file")
            }
            items.append(item)
        }
        let total = TransferProgress(filesDone: 0, filesTotal: items.count, bytesDone: 0, bytesTotal: items.reduce(0) { $0 + $1.size })
        let contents = try await upload(items, total: total, progress: nil)
        var result: [String: (content: FileContent, size: Int64)] = [:]
        for (item, content) in zip(items, contents) {
            // A small file is sent as read, whatever its size was a moment before.
            if case .inline(let bytes) = content {
                result[item.path] = (content, Int64(bytes.count))
            } else {
                result[item.path] = (content, item.size)
            }
        }
        return result
    }

    /// The content of each of `files`, in their order. (Not keyed by path: Swift strings compare by
    /// canonical equivalence, so an NFC and an NFD name, two files on disk, would be one key.)
    private func upload(_ files: [LocalItem], total: TransferProgress, progress: TransferProgress.Handler?) async throws -> [FileContent] {
        var contents = [FileContent?](repeating: nil, count: files.count)
        var done = total
        done.filesDone = 0
        var large: [LocalItem] = []
        var largeIndexes: [Int] = []
        for (position, file) in files.enumerated() {
            if file.size <= Int64(FileContent.inlineLimit) {
                let bytes = try FileIO.readWholeFile(file.path)
                contents[position] = .inline(bytes)
                done.filesDone += 1
                done.bytesDone += Int64(bytes.count)
            } else {
                large.append(file)
                largeIndexes.append(position)
            }
        }
        progress?(done)
        guard !large.isEmpty else { return contents.map { $0! } }

        var jobs: [Plan.Job] = []
        var hashes: [[BlockHash?]] = []
        for (index, file) in large.enumerated() {
            let count = layout.blockCount(forSize: file.size)
            hashes.append(Array(repeating: nil, count: count))
            for block in 0..<count { jobs.append(Plan.Job(file: index, block: block)) }
        }
        let plan = Plan(files: large, jobs: jobs, hashes: hashes, total: done)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<min(workers, jobs.count) {
                group.addTask { try await self.work(plan, progress: progress) }
            }
            // The first failure ends the put: leaving the group cancels the other workers.
            while try await group.next() != nil {}
        }
        let finished = plan.state.withLock { $0.hashes }
        for (index, position) in largeIndexes.enumerated() {
            contents[position] = .blocks(finished[index].map { $0! }, blockSize: layout.blockSize)
        }
        return contents.map { $0! }
    }

    /// One worker: takes blocks until none are left, reading each into the same buffer.
    private func work(_ plan: Plan, progress: TransferProgress.Handler?) async throws {
        var buffer = [UInt8](repeating: 0, count: layout.blockSize)
        let hasher = SHA256Hasher()
        while let job = plan.take() {
            try Task.checkCancellation()
            let file = plan.files[job.file]
            let offset = Int64(job.block) * Int64(layout.blockSize)
            let length = Int(min(Int64(layout.blockSize), file.size - offset))
            try read(file.path, offset: offset, into: &buffer, count: length)
            let hash = try await send(buffer, count: length, hasher: hasher)
            let report = plan.finish(job, hash: hash, bytes: length)
            progress?(report)
        }
    }

    private func read(_ path: String, offset: Int64, into buffer: inout [UInt8], count: Int) throws {
        let fd = try FileIO.open(path, flags: O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        let got = try buffer.withUnsafeMutableBytes { raw in
            try FileIO.readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: raw[..<count]), at: offset, path: path)
        }
        guard got == count else {
            throw SiloError(.localFile, "\(path) changed while it was being read (it is shorter than when the put began); try again")
        }
    }

    /// Hashes and uploads one block; the ``Block`` lives only in this call so the caller's buffer is
    /// uniquely referenced again (and reused, not copied) for the next read.
    private func send(_ buffer: [UInt8], count: Int, hasher: SHA256Hasher) async throws -> BlockHash {
        let block = Block(bytes: count == buffer.count ? buffer : Array(buffer[..<count]), hasher: hasher)
        if try await !service.missingBlocks([block.hash]).isEmpty {
            try await service.uploadBlock(block)
        }
        return block.hash
    }
}
