/// Builds a ``Changeset`` from what is to be at each path: the one place that turns files,
/// directories and symlinks, whether local, copied or moved, into changes. Put, cp and mount
/// commits all build theirs here.
public struct ChangesetBuilder: Sendable {
    public private(set) var changes: [Change] = []

    public init() {}

    public var changeset: Changeset { Changeset(changes) }
    public var isEmpty: Bool { changes.isEmpty }

    public mutating func directory(_ path: VolumePath, mode: UInt32, mtimeNanoseconds: Int64, owner: Owner? = nil) {
        changes.append(.makeDirectory(path, mode: mode, mtimeNanoseconds: mtimeNanoseconds, owner: owner))
    }

    public mutating func symlink(_ path: VolumePath, target: String, mtimeNanoseconds: Int64, owner: Owner? = nil) {
        changes.append(.symlink(path, target: target, mtimeNanoseconds: mtimeNanoseconds, owner: owner))
    }

    public mutating func fifo(_ path: VolumePath, mode: UInt32, mtimeNanoseconds: Int64, owner: Owner? = nil) {
        changes.append(.fifo(path, mode: mode, mtimeNanoseconds: mtimeNanoseconds, owner: owner))
    }

    public mutating func device(_ path: VolumePath, kind: EntryKind, number: DeviceNumber, mode: UInt32, mtimeNanoseconds: Int64, owner: Owner? = nil) {
        changes.append(.device(path, kind, number, mode: mode, mtimeNanoseconds: mtimeNanoseconds, owner: owner))
    }

    /// New attributes for `path`, applied to whatever it holds when the commit applies.
    public mutating func attributes(_ path: VolumePath, _ attributes: AttributeChanges) {
        changes.append(.setAttributes(path, attributes))
    }

    /// The extended attributes of a path just put, made or copied (which carries none), if it has any.
    public mutating func extendedAttributes(_ path: VolumePath, _ attributes: ExtendedAttributes) {
        if !attributes.isEmpty { self.attributes(path, AttributeChanges(extendedAttributes: attributes)) }
    }

    public mutating func file(_ path: VolumePath, _ file: FilePut, precondition: Precondition? = nil) {
        changes.append(.put(path, file, precondition: precondition))
    }

    /// Makes `path` another name of the file `file.fileID` names (see ``Change/link(_:_:)``).
    public mutating func link(_ path: VolumePath, _ file: FilePut) {
        changes.append(.link(path, file))
    }

    /// Any change as it is (a precondition, a removal that must find its path).
    public mutating func add(_ change: Change) {
        changes.append(change)
    }

    /// Removes whatever the volume holds at `path` when the commit applies, if anything.
    public mutating func remove(_ path: VolumePath) {
        changes.append(.removeIfPresent(path))
    }

    /// Puts `entry` (a file with its content, a directory or a symlink) at `path`, keeping its mode
    /// and time unless given others, and its owner: no data moves, the content is referenced as it is.
    public mutating func copy(_ entry: Entry, to path: VolumePath, mode: UInt32? = nil, mtimeNanoseconds: Int64? = nil) throws(SiloError) {
        let mode = mode ?? entry.mode
        let mtime = mtimeNanoseconds ?? entry.mtimeNanoseconds
        switch entry.kind {
        case .directory:
            directory(path, mode: mode, mtimeNanoseconds: mtime, owner: entry.owner)
        case .symlink:
            symlink(path, target: entry.symlinkTarget ?? "", mtimeNanoseconds: mtime, owner: entry.owner)
        case .fifo:
            fifo(path, mode: mode, mtimeNanoseconds: mtime, owner: entry.owner)
        case .characterDevice, .blockDevice:
            device(path, kind: entry.kind, number: entry.device ?? DeviceNumber(major: 0, minor: 0), mode: mode, mtimeNanoseconds: mtime, owner: entry.owner)
        case .socket:
            throw SiloError(.invalidArgument, "\(entry.path) is a socket, which lives in its mount only and is never committed")
        case .file:
            guard let content = entry.content else { throw SiloError(.storage, "\(entry.path) has no recorded content") }
            file(path, FilePut(content: content, size: entry.size, mode: mode, mtimeNanoseconds: mtime, owner: entry.owner))
        }
        extendedAttributes(path, entry.extendedAttributes)
    }

    /// Copies `entries`, `source` and what a tree listing found beneath it, to `target`.
    public mutating func copyTree(_ entries: [Entry], from source: VolumePath, to target: VolumePath) throws(SiloError) {
        for entry in entries {
            let suffix = entry.path == source ? "" : String(entry.path.rawValue.dropFirst(source.isRoot ? 0 : source.rawValue.count + 1))
            try copy(entry, to: suffix.isEmpty ? target : try target.appending(suffix))
        }
    }
}
