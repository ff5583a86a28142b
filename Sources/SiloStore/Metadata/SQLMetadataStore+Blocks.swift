import Foundation
import SQLKit
import SiloCore

extension SQLMetadataStore {
    public func blockStates(_ hashes: [BlockHash], workspace: String) async throws -> [BlockHash: BlockState] {
        try await backend.readTransaction { db in try await Self.blockStates(hashes, workspace: workspace, on: db) }
    }

    static func blockStates(_ hashes: some Collection<BlockHash>, workspace: String, on db: any SQLDatabase) async throws -> [BlockHash: BlockState] {
        var states: [BlockHash: BlockState] = [:]
        for batch in hashes.map({ Data($0.bytes) }).chunked(batchSize) {
            let rows = try await db.raw(
                "SELECT hash, length, damaged FROM blocks WHERE workspace = \(bind: workspace) AND hash IN (\(binds: Array(batch)))"
            ).all()
            for row in rows {
                let hash = try BlockHash(bytes: try row.decode(column: "hash", as: Data.self))
                states[hash] = BlockState(
                    length: try row.decode(column: "length", as: Int.self), damaged: try row.decode(column: "damaged", as: Int.self) != 0
                )
            }
        }
        return states
    }

    public func recordBlock(_ hash: BlockHash, length: Int, workspace: String) async throws {
        try await backend.writeTransaction { db in
            try await Self.recordBlocks([hash: length], workspace: workspace, on: db)
        }
    }

    static func recordBlocks(_ lengths: [BlockHash: Int], workspace: String, on db: any SQLDatabase) async throws {
        for batch in Array(lengths).chunked(batchSize) {
            var insert = db.insert(into: "blocks").columns("workspace", "hash", "length", "damaged")
            for (hash, length) in batch {
                insert = insert.values(SQLBind(workspace), SQLBind(Data(hash.bytes)), SQLBind(Int64(length)), SQLBind(0))
            }
            try await insert.onConflict(with: ["workspace", "hash"]) { conflict in
                conflict.set(excludedValueOf: "length").set(excludedValueOf: "damaged")
            }.run()
        }
    }

    public func storedBytes(workspace: String) async throws -> Int64 {
        try await backend.readTransaction { db in
            let rows = try await db.raw("SELECT COALESCE(SUM(length), 0) AS total FROM blocks WHERE workspace = \(bind: workspace)").all()
            return try rows.first?.decode(column: "total", as: Int64.self) ?? 0
        }
    }

    public func markBlockDamaged(_ hash: BlockHash, length: Int?, workspace: String) async throws {
        try await backend.writeTransaction { db in
            if let length {
                try await db.raw(
                    """
                    INSERT INTO blocks (workspace, hash, length, damaged) VALUES (\(bind: workspace), \(bind: Data(hash.bytes)), \(bind: Int64(length)), 1)
                    ON CONFLICT (workspace, hash) DO UPDATE SET damaged = 1
                    """
                ).run()
            } else {
                try await db.raw(
                    "UPDATE blocks SET damaged = 1 WHERE workspace = \(bind: workspace) AND hash = \(bind: Data(hash.bytes))"
                ).run()
            }
        }
    }
}
