import Foundation
import SQLKit
import SiloCore

/// The metadata store in portable SQL, over any ``SQLBackend``.
///
/// Entries are versioned in place: a row per (volume, path, added_version) with the version that
/// removed or replaced it (`removed_version`, ``SQLMetadataStore/live`` while current). The tree at
/// version `v` is the rows with `added_version <= v < removed_version`, so reads at any version are
/// index scans over what they return, and a commit touches only the rows of the paths it changes.
public final class SQLMetadataStore: MetadataStore {
    /// `removed_version` of a row that is still current.
    static let live = Int64.max
    /// Rows per statement when a commit reads or writes many paths.
    static let batchSize = 400

    let backend: any SQLBackend

    public init(backend: any SQLBackend) async throws {
        self.backend = backend
        try await migrate()
    }

    /// The schema version this build writes: the number of steps in ``migrations(_:)``.
    public static let schemaVersion: Int64 = 10

    /// The statements that bring a database from version `i` to `i + 1`, in order. A store records its
    /// version in `silo_schema`; opening it applies the missing steps in one transaction (all or none),
    /// and a database from a newer build is refused rather than guessed at.
    static func migrations(_ backend: any SQLBackend) -> [[String]] {
        let blob = backend.blobType
        let path = backend.pathType
        return [
            // 1: volumes, their history, versioned entries, block references and the collection queue.
            [
                """
                CREATE TABLE IF NOT EXISTS volumes (
                    id \(backend.autoIncrementPrimaryKey),
                    workspace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    latest_version BIGINT NOT NULL,
                    UNIQUE (workspace, name))
                """,
                """
                CREATE TABLE IF NOT EXISTS versions (
                    volume_id BIGINT NOT NULL,
                    version BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    author TEXT NOT NULL,
                    commit_id TEXT,
                    files_added BIGINT NOT NULL,
                    files_changed BIGINT NOT NULL,
                    files_removed BIGINT NOT NULL,
                    bytes_added BIGINT NOT NULL,
                    PRIMARY KEY (volume_id, version))
                """,
                "CREATE UNIQUE INDEX IF NOT EXISTS versions_commit_id ON versions (volume_id, commit_id)",
                """
                CREATE TABLE IF NOT EXISTS entries (
                    volume_id BIGINT NOT NULL,
                    path \(path) NOT NULL,
                    parent \(path) NOT NULL,
                    name \(path) NOT NULL,
                    added_version BIGINT NOT NULL,
                    removed_version BIGINT NOT NULL,
                    kind INTEGER NOT NULL,
                    size BIGINT NOT NULL,
                    mode BIGINT NOT NULL,
                    mtime_ns BIGINT NOT NULL,
                    block_size BIGINT NOT NULL,
                    blocks \(blob),
                    inline_data \(blob),
                    target TEXT,
                    PRIMARY KEY (volume_id, path, added_version))
                """,
                "CREATE INDEX IF NOT EXISTS entries_parent ON entries (volume_id, parent, name)",
                "CREATE INDEX IF NOT EXISTS entries_added ON entries (volume_id, added_version)",
                "CREATE INDEX IF NOT EXISTS entries_removed ON entries (volume_id, removed_version, path)",
                """
                CREATE TABLE IF NOT EXISTS block_refs (
                    workspace TEXT NOT NULL,
                    hash \(blob) NOT NULL,
                    volume_id BIGINT NOT NULL,
                    PRIMARY KEY (workspace, hash, volume_id))
                """,
                "CREATE INDEX IF NOT EXISTS block_refs_volume ON block_refs (volume_id)",
                """
                CREATE TABLE IF NOT EXISTS block_gc (
                    workspace TEXT NOT NULL,
                    hash \(blob) NOT NULL,
                    PRIMARY KEY (workspace, hash))
                """,
            ],
            // 2: every block's real length, so a commit checks declared sizes against the bytes stored,
            // and a mark on blocks a read found damaged, so they count as missing until uploaded again.
            // Blocks stored before this version get their row the first time a commit names them.
            [
                """
                CREATE TABLE blocks (
                    workspace TEXT NOT NULL,
                    hash \(blob) NOT NULL,
                    length BIGINT NOT NULL,
                    damaged INTEGER NOT NULL,
                    PRIMARY KEY (workspace, hash))
                """
            ],
            // 3: a server's tokens, with roles: 0 member, 1 admin of its workspace, 2 server admin. A
            // server's tokens table predates this step (admin was 1 for every admin then): its oldest
            // live admin, the one the server made on its first start, becomes the server admin.
            [
                """
                CREATE TABLE IF NOT EXISTS tokens (
                    id TEXT PRIMARY KEY,
                    digest TEXT NOT NULL UNIQUE,
                    workspace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    admin BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    revoked_at BIGINT)
                """,
                """
                UPDATE tokens SET admin = 2 WHERE id = (
                    SELECT id FROM tokens WHERE admin = 1 AND revoked_at IS NULL ORDER BY created_at, id LIMIT 1)
                """,
            ],
            // 4: who each entry belongs to. NULL in rows written before (and in directories a commit
            // made as parents): no owner recorded, shown as before.
            [
                "ALTER TABLE entries ADD COLUMN uid BIGINT",
                "ALTER TABLE entries ADD COLUMN gid BIGINT",
            ],
            // 5: extended attributes, as JSON (`{"user.tag": "base64"}`); NULL for none.
            ["ALTER TABLE entries ADD COLUMN xattrs TEXT"],
            // 6: hard links: the names of one file carry its id (NULL for a file of one name).
            [
                "ALTER TABLE entries ADD COLUMN file_id BIGINT",
                "CREATE INDEX IF NOT EXISTS entries_file ON entries (volume_id, file_id) WHERE file_id IS NOT NULL",
            ],
            // 7: device nodes (kinds 4 and 5) and their numbers, as glibc's dev_t; NULL for other kinds.
            ["ALTER TABLE entries ADD COLUMN device BIGINT"],
            // 8: each volume's kind ('snapshot' or 'shared').
            ["ALTER TABLE volumes ADD COLUMN kind TEXT NOT NULL DEFAULT 'snapshot'"],
            // 9: shared volumes' file locks, each held by a mount (`holder`) until its lease runs out.
            // Offsets are unsigned 64-bit numbers kept as their signed bit patterns.
            [
                """
                CREATE TABLE IF NOT EXISTS locks (
                    volume_id BIGINT NOT NULL REFERENCES volumes(id) ON DELETE CASCADE,
                    path TEXT NOT NULL,
                    holder TEXT NOT NULL,
                    owner BIGINT NOT NULL,
                    flock INTEGER NOT NULL,
                    exclusive INTEGER NOT NULL,
                    start_offset BIGINT NOT NULL,
                    end_offset BIGINT NOT NULL,
                    pid BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX IF NOT EXISTS locks_path ON locks (volume_id, path)",
                "CREATE INDEX IF NOT EXISTS locks_holder ON locks (holder)",
            ],
            // 10: lock holders' leases. A holder whose lease lapsed keeps its row, so that it cannot
            // take locks again under that name nor commit under the locks it lost (fencing).
            [
                """
                CREATE TABLE IF NOT EXISTS lock_holders (
                    volume_id BIGINT NOT NULL REFERENCES volumes(id) ON DELETE CASCADE,
                    holder TEXT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    PRIMARY KEY (volume_id, holder)
                )
                """
            ],
        ]
    }

    private func migrate() async throws {
        let steps = Self.migrations(backend)
        assert(steps.count == Self.schemaVersion, "schemaVersion must count the migrations")
        try await backend.writeTransaction { db in
            try await db.raw("CREATE TABLE IF NOT EXISTS silo_schema (version BIGINT NOT NULL)").run()
            let rows = try await db.raw("SELECT version FROM silo_schema").all()
            let current = try rows.first?.decode(column: "version", as: Int64.self) ?? 0
            guard current <= Int64(steps.count) else {
                throw SiloError(
                    .storage,
                    "the metadata database has schema version \(current), written by a newer silo; this silo understands versions up to \(steps.count). Use that newer silo (or a newer build of it) with this data"
                )
            }
            guard current < Int64(steps.count) else { return }
            for step in steps[Int(current)...] {
                for statement in step { try await db.raw(SQLQueryString(statement)).run() }
            }
            if rows.isEmpty {
                try await db.raw("INSERT INTO silo_schema (version) VALUES (\(bind: Int64(steps.count)))").run()
            } else {
                try await db.raw("UPDATE silo_schema SET version = \(bind: Int64(steps.count))").run()
            }
        }
    }

    public func close() async throws {
        try await backend.close()
    }

    // MARK: Volumes

    struct VolumeRow: Sendable {
        var id: Int64
        var info: VolumeInfo
    }

    static func volumeRow(_ name: VolumeName, workspace: String, on db: any SQLDatabase) async throws -> VolumeRow {
        let rows = try await db.raw(
            "SELECT id, name, created_at, latest_version, kind FROM volumes WHERE workspace = \(bind: workspace) AND name = \(bind: name.rawValue)"
        ).all()
        guard let row = rows.first else {
            throw SiloError(.volumeNotFound, "volume '\(name)' does not exist; create it with `silo volume create \(name)`")
        }
        return try decodeVolume(row)
    }

    static func decodeVolume(_ row: any SQLRow) throws -> VolumeRow {
        VolumeRow(
            id: try row.decode(column: "id", as: Int64.self),
            info: VolumeInfo(
                name: try VolumeName(row.decode(column: "name", as: String.self)),
                createdAtMilliseconds: try row.decode(column: "created_at", as: Int64.self),
                latestVersion: Version(try row.decode(column: "latest_version", as: Int64.self)),
                kind: try decodeKind(of: row)
            )
        )
    }

    static func decodeKind(of row: any SQLRow) throws -> VolumeKind {
        let text = try row.decode(column: "kind", as: String.self)
        guard let kind = VolumeKind(rawValue: text) else { throw SiloError(.storage, "the metadata database holds a volume of unknown kind '\(text)'") }
        return kind
    }

    public func createVolume(_ name: VolumeName, kind: VolumeKind, workspace: String, author: String, now: Int64) async throws -> VolumeInfo {
        try await backend.writeTransaction { db in
            let existing = try await db.raw(
                "SELECT id FROM volumes WHERE workspace = \(bind: workspace) AND name = \(bind: name.rawValue)"
            ).all()
            guard existing.isEmpty else {
                throw SiloError(.volumeExists, "volume '\(name)' already exists")
            }
            let inserted = try await db.raw(
                """
                INSERT INTO volumes (workspace, name, created_at, latest_version, kind)
                VALUES (\(bind: workspace), \(bind: name.rawValue), \(bind: now), 0, \(bind: kind.rawValue)) RETURNING id
                """
            ).all()
            guard let id = try inserted.first?.decode(column: "id", as: Int64.self) else {
                throw SiloError(.storage, "the metadata database did not return the new volume's id")
            }
            try await db.raw(
                """
                INSERT INTO versions (volume_id, version, created_at, author, commit_id,
                    files_added, files_changed, files_removed, bytes_added)
                VALUES (\(bind: id), 0, \(bind: now), \(bind: author), NULL, 0, 0, 0, 0)
                """
            ).run()
            return VolumeInfo(name: name, createdAtMilliseconds: now, latestVersion: .empty, kind: kind)
        }
    }

    public func volume(_ name: VolumeName, workspace: String) async throws -> VolumeInfo {
        try await backend.readTransaction { db in try await Self.volumeRow(name, workspace: workspace, on: db).info }
    }

    public func listVolumes(workspace: String) async throws -> [VolumeInfo] {
        try await backend.readTransaction { db in
            try await db.raw(
                "SELECT id, name, created_at, latest_version, kind FROM volumes WHERE workspace = \(bind: workspace) ORDER BY name"
            ).all().map { try Self.decodeVolume($0).info }
        }
    }

    public func renameVolume(_ name: VolumeName, to newName: VolumeName, workspace: String) async throws {
        try await backend.writeTransaction { db in
            let row = try await Self.volumeRow(name, workspace: workspace, on: db)
            guard name != newName else { return }
            let clash = try await db.raw(
                "SELECT id FROM volumes WHERE workspace = \(bind: workspace) AND name = \(bind: newName.rawValue)"
            ).all()
            guard clash.isEmpty else {
                throw SiloError(.volumeExists, "cannot rename '\(name)' to '\(newName)': volume '\(newName)' already exists")
            }
            try await db.raw("UPDATE volumes SET name = \(bind: newName.rawValue) WHERE id = \(bind: row.id)").run()
        }
    }

    public func deleteVolume(_ name: VolumeName, workspace: String) async throws {
        try await backend.writeTransaction { db in
            let row = try await Self.volumeRow(name, workspace: workspace, on: db)
            let hashes = try await db.raw("SELECT hash FROM block_refs WHERE volume_id = \(bind: row.id)").all()
                .map { try $0.decode(column: "hash", as: Data.self) }
            for statement: SQLQueryString in [
                "DELETE FROM locks WHERE volume_id = \(bind: row.id)",
                "DELETE FROM entries WHERE volume_id = \(bind: row.id)",
                "DELETE FROM versions WHERE volume_id = \(bind: row.id)",
                "DELETE FROM block_refs WHERE volume_id = \(bind: row.id)",
                "DELETE FROM volumes WHERE id = \(bind: row.id)",
            ] {
                try await db.raw(statement).run()
            }
            // Queue every block the volume used; collection keeps those another volume still uses.
            for batch in hashes.chunked(Self.batchSize) {
                var insert = db.insert(into: "block_gc").columns("workspace", "hash").ignoringConflicts()
                for hash in batch { insert = insert.values(SQLBind(workspace), SQLBind(hash)) }
                try await insert.run()
            }
        }
    }

    public func collectGarbage(workspace: String, delete: @escaping @Sendable ([BlockHash]) async throws -> Void) async throws -> Int {
        // The blocks are deleted inside the write transaction: a commit claiming one of them either ran
        // before (and removed it from the queue) or runs after (and finds it gone, and fails cleanly).
        try await backend.writeTransaction { db in
            let rows = try await db.raw(
                """
                SELECT g.hash FROM block_gc g
                WHERE g.workspace = \(bind: workspace)
                  AND NOT EXISTS (SELECT 1 FROM block_refs r WHERE r.workspace = g.workspace AND r.hash = g.hash)
                """
            ).all()
            let hashes = try rows.map { try $0.decode(column: "hash", as: Data.self) }
            try await delete(hashes.map { try BlockHash(bytes: $0) })
            for batch in hashes.chunked(Self.batchSize) {
                try await db.raw("DELETE FROM blocks WHERE workspace = \(bind: workspace) AND hash IN (\(binds: Array(batch)))").run()
            }
            try await db.raw("DELETE FROM block_gc WHERE workspace = \(bind: workspace)").run()
            return hashes.count
        }
    }

    // MARK: Commit

    public func commit(
        _ changeset: Changeset,
        to volume: VolumeName,
        workspace: String,
        options: CommitOptions,
        now: Int64,
        lengthsOfUnrecordedBlocks: @escaping @Sendable (Set<BlockHash>) async throws -> [BlockHash: Int]
    ) async throws -> CommitResult {
        try await backend.writeTransaction { db in
            let row = try await Self.volumeRow(volume, workspace: workspace, on: db)
            if let commitID = options.commitID {
                let earlier = try await db.raw(
                    """
                    SELECT version, created_at, author, files_added, files_changed, files_removed, bytes_added
                    FROM versions WHERE volume_id = \(bind: row.id) AND commit_id = \(bind: commitID)
                    """
                ).all()
                if let earlier = earlier.first {
                    return CommitResult(version: try Self.decodeVersion(earlier), wasRetry: true)
                }
            }
            var apply = CommitApplication(volume: row, version: row.info.latestVersion.next, now: now, db: db)
            try await apply.run(changeset)
            try await apply.write(workspace: workspace, lengthsOfUnrecordedBlocks: lengthsOfUnrecordedBlocks)
            let info = apply.summary(author: options.author)
            try await db.raw(
                """
                INSERT INTO versions (volume_id, version, created_at, author, commit_id,
                    files_added, files_changed, files_removed, bytes_added)
                VALUES (\(bind: row.id), \(bind: info.version.rawValue), \(bind: now), \(bind: options.author),
                    \(bind: options.commitID), \(bind: info.filesAdded), \(bind: info.filesChanged),
                    \(bind: info.filesRemoved), \(bind: info.bytesAdded))
                """
            ).run()
            try await db.raw("UPDATE volumes SET latest_version = \(bind: info.version.rawValue) WHERE id = \(bind: row.id)").run()
            return CommitResult(version: info, wasRetry: false)
        }
    }
}

extension Array {
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
