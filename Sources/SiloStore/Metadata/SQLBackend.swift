import SQLKit
import SiloCore

/// What differs between the SQL databases the metadata store runs on; everything else is shared SQL.
///
/// SQLite (``SQLiteBackend``) is the embedded default. A PostgreSQL backend supplies a pooled session per
/// transaction, `BYTEA` for blobs, identity columns, `COLLATE "C"` paths (byte order, which the
/// range scans for directory removal rely on) and a `SELECT … FOR UPDATE` on the volume row in place of
/// SQLite's database-wide write lock.
public protocol SQLBackend: Sendable {
    /// Column type for binary values.
    var blobType: String { get }
    /// Column definition for an auto-numbered 64-bit primary key.
    var autoIncrementPrimaryKey: String { get }
    /// Column type for paths, compared byte by byte.
    var pathType: String { get }

    /// Runs `body` in a transaction that excludes every other writer of the same volumes until it ends;
    /// commits when `body` returns, rolls back when it throws.
    func writeTransaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R
    /// Runs `body` in a transaction that sees one consistent state of the database.
    func readTransaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R

    /// Translates a database driver's error into a ``SiloError``.
    func mapError(_ error: any Error) -> SiloError

    func close() async throws
}
