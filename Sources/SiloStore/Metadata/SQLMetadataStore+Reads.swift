import Foundation
import SQLKit
import SiloCore
import SiloWire

/// Reads at any version: entries, listings, trees, what changed between two versions, history. Each
/// is an index scan over the rows it returns (see ``SQLMetadataStore``).
extension SQLMetadataStore {
    static let entryColumns = "path, kind, size, mode, mtime_ns, added_version, block_size, blocks, inline_data, target, uid, gid, xattrs, file_id, device"
    static let entryColumnsWithoutData =
        "path, kind, size, mode, mtime_ns, added_version, block_size, blocks, NULL AS inline_data, target, uid, gid, xattrs, file_id, device"

    static func decodeEntry(_ row: any SQLRow) throws -> Entry {
        let path = VolumePath(trusted: try row.decode(column: "path", as: String.self))
        let kind = try decodeKind(try row.decode(column: "kind", as: Int.self), at: path)
        var content: FileContent?
        if kind == .file {
            if let inline = try row.decode(column: "inline_data", as: Data?.self) {
                content = .inline([UInt8](inline))
            } else if let packed = try row.decode(column: "blocks", as: Data?.self) {
                content = .blocks(try BlockHash.unpack([UInt8](packed)), blockSize: try row.decode(column: "block_size", as: Int.self))
            }
        }
        return Entry(
            path: path,
            kind: kind,
            size: try row.decode(column: "size", as: Int64.self),
            mode: UInt32(truncatingIfNeeded: try row.decode(column: "mode", as: Int64.self)),
            mtimeNanoseconds: try row.decode(column: "mtime_ns", as: Int64.self),
            version: Version(try row.decode(column: "added_version", as: Int64.self)),
            content: content,
            symlinkTarget: try row.decode(column: "target", as: String?.self),
            owner: try decodeOwner(row, path: path),
            // Most rows have none: a NULL is seen without the decoder's cost.
            extendedAttributes: try row.decodeNil(column: "xattrs") ? [:] : decodeAttributes(try row.decode(column: "xattrs", as: String.self), path: path),
            fileID: try row.decodeNil(column: "file_id") ? nil : FileID(UInt64(bitPattern: try row.decode(column: "file_id", as: Int64.self))),
            device: try row.decodeNil(column: "device") ? nil : DeviceNumber(dev: UInt64(bitPattern: try row.decode(column: "device", as: Int64.self)))
        )
    }

    static func decodeKind(_ code: Int, at path: VolumePath) throws -> EntryKind {
        switch code {
        case 0: .file
        case 1: .directory
        case 2: .symlink
        case 3: .fifo
        case 4: .characterDevice
        case 5: .blockDevice
        case let other: throw SiloError(.storage, "the metadata database holds an entry of unknown kind \(other) at \(path)")
        }
    }

    /// `entries` with the number of names each linked file has at `version` (a file of one name has 1).
    static func countingLinks(_ entries: [Entry], volume: VolumeRow, at version: Version, on db: any SQLDatabase) async throws -> [Entry] {
        let files = Set(entries.compactMap(\.fileID))
        guard !files.isEmpty else { return entries }
        var counts: [FileID: Int] = [:]
        for batch in Array(files).chunked(batchSize) {
            let rows = try await db.raw(
                """
                SELECT file_id, COUNT(*) AS names FROM entries
                WHERE volume_id = \(bind: volume.id) AND file_id IN (\(binds: batch.map { Int64(bitPattern: $0.rawValue) }))
                  AND added_version <= \(bind: version.rawValue) AND removed_version > \(bind: version.rawValue)
                GROUP BY file_id
                """
            ).all()
            for row in rows {
                counts[FileID(UInt64(bitPattern: try row.decode(column: "file_id", as: Int64.self)))] = try row.decode(column: "names", as: Int.self)
            }
        }
        return entries.map { entry in
            var entry = entry
            if let file = entry.fileID { entry.linkCount = max(1, counts[file] ?? 1) }
            return entry
        }
    }

    /// Extended attributes as a row keeps them: JSON, names to base64 values; nil for none.
    static func encodeAttributes(_ attributes: ExtendedAttributes) -> String? {
        guard !attributes.isEmpty else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(ExtendedAttributesWire.base64(attributes))).map { String(decoding: $0, as: UTF8.self) }
    }

    static func decodeAttributes(_ text: String?, path: VolumePath) throws -> ExtendedAttributes {
        guard let text else { return [:] }
        guard let encoded = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) else {
            throw SiloError(.storage, "the metadata database holds damaged extended attributes at \(path)")
        }
        do {
            return try ExtendedAttributesWire.attributes(base64: encoded)
        } catch {
            throw SiloError(.storage, "the metadata database holds a damaged extended attribute '\(error.name)' at \(path)")
        }
    }

    /// How a row records an entry's kind. A socket is never committed (``Changeset/validate()``
    /// refuses one), so it has no code.
    static func kindCode(_ kind: EntryKind) -> Int {
        switch kind {
        case .file: 0
        case .directory: 1
        case .symlink: 2
        case .fifo: 3
        case .characterDevice: 4
        case .blockDevice: 5
        case .socket: preconditionFailure("a socket is never committed")
        }
    }

    /// The owner a row records: both ids or neither (ids beyond 32 bits are damage, not owners).
    static func decodeOwner(_ row: any SQLRow, path: VolumePath) throws -> Owner? {
        if try row.decodeNil(column: "uid") { return nil }
        let uid = try row.decode(column: "uid", as: Int64?.self)
        let gid = try row.decode(column: "gid", as: Int64?.self)
        guard let uid, let gid else { return nil }
        guard let user = UInt32(exactly: uid), let group = UInt32(exactly: gid) else {
            throw SiloError(.storage, "the metadata database holds an owner \(uid):\(gid) out of range at \(path)")
        }
        return Owner(uid: user, gid: group)
    }

    static func resolve(_ version: Version?, of volume: VolumeRow) throws -> Version {
        guard let version else { return volume.info.latestVersion }
        guard version >= .empty, version <= volume.info.latestVersion else {
            throw SiloError(
                .versionNotFound,
                "volume '\(volume.info.name)' has versions 0 to \(volume.info.latestVersion), not \(version)"
            )
        }
        return version
    }

    static func rootEntry(_ volume: VolumeRow) -> Entry {
        Entry(path: .root, kind: .directory, size: 0, mode: 0o755, mtimeNanoseconds: volume.info.createdAtMilliseconds * 1_000_000, version: .empty)
    }

    static func entry(_ path: VolumePath, volume: VolumeRow, at version: Version, on db: any SQLDatabase) async throws -> Entry? {
        if path.isRoot { return rootEntry(volume) }
        let rows = try await db.raw(
            """
            SELECT \(unsafeRaw: entryColumns) FROM entries
            WHERE volume_id = \(bind: volume.id) AND path = \(bind: path.rawValue)
              AND added_version <= \(bind: version.rawValue) AND removed_version > \(bind: version.rawValue)
            """
        ).all()
        guard let entry = try rows.first.map(decodeEntry) else { return nil }
        return try await countingLinks([entry], volume: volume, at: version, on: db)[0]
    }

    public func entry(at path: VolumePath, in volume: VolumeName, workspace: String, version: Version?) async throws -> Entry? {
        try await backend.readTransaction { db in
            let row = try await Self.volumeRow(volume, workspace: workspace, on: db)
            return try await Self.entry(path, volume: row, at: try Self.resolve(version, of: row), on: db)
        }
    }

    static func directory(_ path: VolumePath, volume: VolumeRow, at version: Version, on db: any SQLDatabase) async throws {
        guard let entry = try await entry(path, volume: volume, at: version, on: db) else {
            throw SiloError(.pathNotFound, "\(path) does not exist in volume '\(volume.info.name)' at version \(version)")
        }
        guard entry.kind == .directory else {
            throw SiloError(.notADirectory, "\(path) in volume '\(volume.info.name)' is a \(entry.kind.rawValue), not a directory")
        }
    }

    public func list(_ path: VolumePath, in volume: VolumeName, workspace: String, version: Version?) async throws -> [Entry] {
        try await backend.readTransaction { db in
            let row = try await Self.volumeRow(volume, workspace: workspace, on: db)
            let version = try Self.resolve(version, of: row)
            try await Self.directory(path, volume: row, at: version, on: db)
            // `+` keeps the version columns out of index choice: without statistics SQLite would
            // take entries_removed for `removed_version >`, which walks every current row of the
            // volume, instead of entries_parent, which holds just this directory's (a listing, and so
            // a mount's first lookup, would grow with the volume).
            let entries = try await db.raw(
                """
                SELECT \(unsafeRaw: Self.entryColumnsWithoutData) FROM entries
                WHERE volume_id = \(bind: row.id) AND parent = \(bind: path.rawValue)
                  AND +added_version <= \(bind: version.rawValue) AND +removed_version > \(bind: version.rawValue)
                ORDER BY name
                """
            ).all().map(Self.decodeEntry)
            return try await Self.countingLinks(entries, volume: row, at: version, on: db)
        }
    }

    public func tree(_ path: VolumePath, in volume: VolumeName, workspace: String, version: Version?) async throws -> [Entry] {
        try await backend.readTransaction { db in
            let row = try await Self.volumeRow(volume, workspace: workspace, on: db)
            let version = try Self.resolve(version, of: row)
            try await Self.directory(path, volume: row, at: version, on: db)
            let (low, high) = Self.descendantRange(of: path)
            let entries = try await db.raw(
                """
                SELECT \(unsafeRaw: Self.entryColumns) FROM entries
                WHERE volume_id = \(bind: row.id) AND path > \(bind: low) AND path < \(bind: high)
                  AND added_version <= \(bind: version.rawValue) AND removed_version > \(bind: version.rawValue)
                ORDER BY path
                """
            ).all().map(Self.decodeEntry)
            return try await Self.countingLinks(entries, volume: row, at: version, on: db)
        }
    }

    /// Bounds such that `low < p < high` holds exactly for the paths strictly beneath `path`, in byte
    /// order: '/' (0x2F) is followed by '0' (0x30).
    static func descendantRange(of path: VolumePath) -> (String, String) {
        path.isRoot ? ("", "\u{10FFFF}") : (path.rawValue + "/", path.rawValue + "0")
    }

    public func changes(in volume: VolumeName, workspace: String, from: Version, to: Version) async throws -> [PathChange] {
        try await backend.readTransaction { db in
            let row = try await Self.volumeRow(volume, workspace: workspace, on: db)
            let from = try Self.resolve(from, of: row)
            let to = try Self.resolve(to, of: row)
            guard from < to else {
                guard from == to else {
                    throw SiloError(.invalidArgument, "cannot compare version \(from) to the earlier version \(to); give the older version first")
                }
                return []
            }
            // Rows current at `to` that were written after `from`, and rows current at `from` retired by `to`.
            let written = try await db.raw(
                """
                SELECT path, kind FROM entries WHERE volume_id = \(bind: row.id)
                  AND added_version > \(bind: from.rawValue) AND added_version <= \(bind: to.rawValue)
                  AND removed_version > \(bind: to.rawValue)
                """
            ).all()
            let retired = try await db.raw(
                """
                SELECT path, kind FROM entries WHERE volume_id = \(bind: row.id)
                  AND removed_version > \(bind: from.rawValue) AND removed_version <= \(bind: to.rawValue)
                  AND added_version <= \(bind: from.rawValue)
                """
            ).all()
            func kinds(_ rows: [any SQLRow]) throws -> [VolumePath: EntryKind] {
                var result: [VolumePath: EntryKind] = [:]
                for row in rows {
                    let path = VolumePath(trusted: try row.decode(column: "path", as: String.self))
                    result[path] = try Self.decodeKind(try row.decode(column: "kind", as: Int.self), at: path)
                }
                return result
            }
            let after = try kinds(written)
            let before = try kinds(retired)
            var result: [PathChange] = []
            for (path, kind) in after {
                result.append(PathChange(path: path, kind: before[path] == nil ? .added : .modified, entryKind: kind))
            }
            for (path, kind) in before where after[path] == nil {
                result.append(PathChange(path: path, kind: .removed, entryKind: kind))
            }
            return result.sorted { $0.path < $1.path }
        }
    }

    public func history(of volume: VolumeName, workspace: String) async throws -> [VersionInfo] {
        try await backend.readTransaction { db in
            let row = try await Self.volumeRow(volume, workspace: workspace, on: db)
            return try await db.raw(
                """
                SELECT version, created_at, author, files_added, files_changed, files_removed, bytes_added
                FROM versions WHERE volume_id = \(bind: row.id) ORDER BY version
                """
            ).all().map(Self.decodeVersion)
        }
    }

    static func decodeVersion(_ row: any SQLRow) throws -> VersionInfo {
        VersionInfo(
            version: Version(try row.decode(column: "version", as: Int64.self)),
            createdAtMilliseconds: try row.decode(column: "created_at", as: Int64.self),
            author: try row.decode(column: "author", as: String.self),
            filesAdded: try row.decode(column: "files_added", as: Int64.self),
            filesChanged: try row.decode(column: "files_changed", as: Int64.self),
            filesRemoved: try row.decode(column: "files_removed", as: Int64.self),
            bytesAdded: try row.decode(column: "bytes_added", as: Int64.self)
        )
    }
}
