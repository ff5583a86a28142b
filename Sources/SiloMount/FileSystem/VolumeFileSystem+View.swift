import SiloCore

/// The merged view: the layer of changes over the base.
extension VolumeFileSystem {
    /// The entry at `path` as this mount shows it.
    func merged(_ path: VolumePath) async throws -> Entry? {
        if path.isRoot {
            // The root's mode, owner and time may change in a mount; a volume's root records none.
            var root = try await base.root()
            if case .changed(let changed)? = overlay?.lookup(path) {
                (root.mode, root.owner, root.mtimeNanoseconds) = (changed.mode, changed.owner, changed.mtimeNanoseconds)
                root.extendedAttributes = changed.extendedAttributes
            }
            return root
        }
        guard let overlay else { return try await baseEntry(path) }
        switch overlay.lookup(path) {
        case .changed(var entry):
            if let file = entry.fileID { entry.linkCount = overlay.linkCount(of: file, baseLinks: nil) }
            return entry
        case .gone:
            return nil
        case .unchanged:
            guard var entry = try await baseEntry(path) else { return nil }
            if let file = entry.fileID {
                // A name of a file this mount changed under another name shows the file as changed.
                let links = overlay.linkCount(of: file, baseLinks: entry.linkCount)
                entry = overlay.adopt(path, entry: entry) ?? entry
                entry.linkCount = links
            }
            return entry
        }
    }

    /// A directory's entries in this mount's view, without `.` and `..`.
    func mergedListing(of path: VolumePath) async throws -> [Entry] {
        guard let directory = try await merged(path) else { throw Self.notFound(path) }
        guard directory.kind == .directory else { throw SiloError(.notADirectory, "\(path) is not a directory") }
        let hidden = overlay?.hidesBase(below: path) == true
        var listed: [Entry] = []
        if !hidden, try await baseEntry(path)?.kind == .directory { listed = try await base.listing(of: path) }
        let changed = overlay?.children(of: path) ?? []
        // Unchanged directories (every directory of a read-only mount) are the base's listing as it is.
        if changed.isEmpty && !hidden { return listed }
        var result: [VolumePath: Entry] = [:]
        for entry in listed { result[entry.path] = entry }
        for child in changed { result[child] = try await merged(child) }
        return result.values.sorted { $0.path < $1.path }
    }

    /// How many directories `path` (a directory) holds in this mount's view: what
    /// ``mergedListing(of:)`` would count, from the base's count and the changed names only,
    /// since the kernel asks at every look at a directory's attributes (a shared mount's at every
    /// create in it).
    func subdirectoryCount(of path: VolumePath) async throws -> Int {
        let hidden = overlay?.hidesBase(below: path) == true
        var inBase = false
        if !hidden { inBase = try await baseEntry(path)?.kind == .directory }
        var count = inBase ? try await base.subdirectoryCount(of: path) : 0
        for child in overlay?.children(of: path) ?? [] {
            if inBase, try await base.child(child)?.kind == .directory { count -= 1 }
            if try await merged(child)?.kind == .directory { count += 1 }
        }
        return count
    }

    /// Everything beneath a directory in this mount's view, parents before children.
    func mergedTree(of path: VolumePath) async throws -> [(VolumePath, Entry)] {
        var result: [(VolumePath, Entry)] = []
        for entry in try await mergedListing(of: path) {
            result.append((entry.path, entry))
            if entry.kind == .directory { result += try await mergedTree(of: entry.path) }
        }
        return result
    }

    /// The base's entry at `path`, unless the layer of changes hides it.
    func baseEntry(_ path: VolumePath) async throws -> Entry? {
        if path.isRoot { return try await base.root() }
        if overlay?.hidesBase(below: path.parent) == true { return nil }
        guard let parent = try await baseEntry(path.parent), parent.kind == .directory else { return nil }
        return try await base.child(path)
    }
}
