import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import VaporCSQLite

/// One SQLite connection, driven through SQLite's C interface on the calling thread.
///
/// A statement runs where it is asked for, with no hop to a thread pool and back: a metadata
/// transaction is a few statements of microseconds each, and a hop costs more than the statement (a
/// shared mount commits at every close). Prepared statements are kept by their SQL. The only wait
/// that can be long, for another process's write lock, is ``beginImmediate(on:)``'s, and it is
/// waited out on a thread of the pool given, never on the caller's.
///
/// Not thread safe: one transaction uses a connection at a time (``SQLiteBackend`` sees to it), and
/// SQLite lets that transaction move between threads from statement to statement.
final class SQLiteHandle: @unchecked Sendable {
    private var db: OpaquePointer?
    private var statements: [String: Statement] = [:]
    let path: String

    /// At most this many prepared statements are kept; beyond, the cache starts afresh.
    static let statementLimit = 256

    private struct Statement {
        let pointer: OpaquePointer
        let columns: [String]
    }

    /// The failure of an SQLite call: its primary result code and SQLite's message.
    struct Failure: Error, CustomStringConvertible {
        let code: Int32
        let message: String
        var description: String { message }

        static let busy = SQLITE_BUSY, locked = SQLITE_LOCKED, full = SQLITE_FULL
        static let corrupt = SQLITE_CORRUPT, notADatabase = SQLITE_NOTADB
    }

    init(path: String, busyTimeoutMilliseconds: Int32) throws {
        self.path = path
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let opened = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard opened == SQLITE_OK, let handle else {
            let message = handle.flatMap { sqlite_nio_sqlite3_errmsg($0).map { String(cString: $0) } } ?? "error \(opened)"
            sqlite_nio_sqlite3_close_v2(handle)
            throw Failure(code: opened & 0xff, message: "cannot open \(path): \(message)")
        }
        db = handle
        sqlite_nio_sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
    }

    func setBusyTimeout(_ milliseconds: Int32) {
        sqlite_nio_sqlite3_busy_timeout(db, milliseconds)
    }

    /// Runs `sql` with `binds` for its `?`s, handing each row to `onRow`.
    func execute(_ sql: String, binds: [SQLiteData], onRow: (Row) throws -> Void = { _ in }) throws {
        let statement = try prepared(sql)
        let pointer = statement.pointer
        defer {
            sqlite_nio_sqlite3_reset(pointer)
            sqlite_nio_sqlite3_clear_bindings(pointer)
        }
        for (offset, value) in binds.enumerated() {
            try check(bind(value, at: Int32(offset + 1), in: pointer))
        }
        while true {
            let stepped = sqlite_nio_sqlite3_step(pointer)
            if stepped == SQLITE_DONE { return }
            guard stepped == SQLITE_ROW else { try check(stepped); return }
            var values: [SQLiteData] = []
            values.reserveCapacity(statement.columns.count)
            for column in 0..<Int32(statement.columns.count) { values.append(Self.value(of: pointer, at: column)) }
            try onRow(Row(columns: statement.columns, values: values))
        }
    }

    /// Closes the connection; what runs on it afterwards fails.
    func close() {
        for statement in statements.values { sqlite_nio_sqlite3_finalize(statement.pointer) }
        statements.removeAll()
        sqlite_nio_sqlite3_close_v2(db)
        db = nil
    }

    deinit { close() }

    private func prepared(_ sql: String) throws -> Statement {
        if let cached = statements[sql] { return cached }
        guard let db else { throw Failure(code: SQLITE_MISUSE, message: "the connection to \(path) is closed") }
        var pointer: OpaquePointer?
        try check(sqlite_nio_sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &pointer, nil))
        guard let pointer else { throw Failure(code: SQLITE_MISUSE, message: "no statement in: \(sql)") }
        let count = sqlite_nio_sqlite3_column_count(pointer)
        let columns = (0..<count).map { String(cString: sqlite_nio_sqlite3_column_name(pointer, $0)) }
        if statements.count >= Self.statementLimit {
            for statement in statements.values { sqlite_nio_sqlite3_finalize(statement.pointer) }
            statements.removeAll()
        }
        let statement = Statement(pointer: pointer, columns: columns)
        statements[sql] = statement
        return statement
    }

    private func bind(_ value: SQLiteData, at index: Int32, in statement: OpaquePointer) -> Int32 {
        switch value {
        case .integer(let integer): return sqlite_nio_sqlite3_bind_int64(statement, index, Int64(integer))
        case .float(let double): return sqlite_nio_sqlite3_bind_double(statement, index, double)
        case .text(let text):
            var text = text
            return text.withUTF8 { bytes in
                guard let start = bytes.baseAddress else { return sqlite_nio_sqlite3_bind_text64(statement, index, "", 0, Self.transient, UInt8(SQLITE_UTF8)) }
                return UnsafeRawPointer(start).withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                    sqlite_nio_sqlite3_bind_text64(statement, index, $0, UInt64(bytes.count), Self.transient, UInt8(SQLITE_UTF8))
                }
            }
        case .blob(let buffer):
            return buffer.withUnsafeReadableBytes { bytes in
                // An empty blob is still a blob, not NULL (which a nil pointer would bind).
                guard let start = bytes.baseAddress, !bytes.isEmpty else { return sqlite_nio_sqlite3_bind_zeroblob(statement, index, 0) }
                return sqlite_nio_sqlite3_bind_blob64(statement, index, start, UInt64(bytes.count), Self.transient)
            }
        case .null: return sqlite_nio_sqlite3_bind_null(statement, index)
        }
    }

    /// SQLite's SQLITE_TRANSIENT: copy the bytes bound now.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private static func value(of statement: OpaquePointer, at column: Int32) -> SQLiteData {
        switch sqlite_nio_sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER: return .integer(Int(sqlite_nio_sqlite3_column_int64(statement, column)))
        case SQLITE_FLOAT: return .float(sqlite_nio_sqlite3_column_double(statement, column))
        case SQLITE_TEXT:
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
            guard let text = sqlite_nio_sqlite3_column_text(statement, column) else { return .text("") }
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
            guard count > 0, let bytes = sqlite_nio_sqlite3_column_blob(statement, column) else { return .blob(ByteBuffer()) }
            return .blob(ByteBuffer(bytes: UnsafeRawBufferPointer(start: bytes, count: count)))
        default: return .null
        }
    }

    private func check(_ code: Int32) throws {
        guard code != SQLITE_OK else { return }
        let message = db.flatMap { sqlite_nio_sqlite3_errmsg($0).map { String(cString: $0) } } ?? "error \(code)"
        throw Failure(code: code & 0xff, message: message)
    }

    /// A result row: its columns by name, decoded as SQLKit asks.
    struct Row: SQLRow {
        let columns: [String]
        let values: [SQLiteData]

        private static let decoder = SQLiteDataDecoder()

        var allColumns: [String] { columns }

        func contains(column: String) -> Bool { columns.contains(column) }

        func decodeNil(column: String) throws -> Bool {
            guard let index = columns.firstIndex(of: column) else { return true }
            return values[index] == .null
        }

        func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
            guard let index = columns.firstIndex(of: column) else {
                throw Failure(code: SQLITE_MISUSE, message: "no column \(column) in the row")
            }
            return try Self.decoder.decode(D.self, from: values[index])
        }
    }
}

/// A connection as SQLKit's database: the queries SQLKit builds run on ``SQLiteHandle``.
struct SQLiteSession: SQLDatabase {
    let handle: SQLiteHandle
    let logger: Logger
    let eventLoop: any EventLoop
    let dialect: any SQLDialect = SQLiteDialect()
    let queryLogLevel: Logger.Level? = nil

    private static let encoder = SQLiteDataEncoder()

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        do {
            try run(query, onRow)
            return eventLoop.makeSucceededVoidFuture()
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        try run(query, onRow)
    }

    private func run(_ query: any SQLExpression, _ onRow: (any SQLRow) -> Void) throws {
        let (sql, binds) = serialize(query)
        try handle.execute(sql, binds: try binds.map { try Self.encoder.encode($0) }) { onRow($0) }
    }
}
