import Foundation
import SQLKit
import SiloCore
import SiloWire

/// The server's access tokens. A token belongs to one workspace; only a hash of its secret is kept.
public protocol TokenStore: Sendable {
    /// Creates a token and returns it with its secret, which is never shown again.
    func create(workspace: String, name: String, role: TokenRole, now: Int64) async throws -> API.Token
    /// The token whose secret is `secret`, or nil when there is none or it was revoked.
    func authenticate(_ secret: String) async throws -> API.Token?
    /// Live tokens, of one workspace or of all; secrets are not included.
    func list(workspace: String?) async throws -> [API.Token]
    /// Revokes a live token by id, if it belongs to `workspace` (any workspace when nil) and its role is
    /// at most `upTo`; requests carrying it fail from then on. Any other id is "not found", so a caller
    /// learns nothing of tokens it may not manage.
    func revoke(id: String, workspace: String?, upTo: TokenRole) async throws
}

/// Token secrets and their identifiers.
public enum TokenSecret {
    /// A secret reads `silo_<id>_<64 hex digits>`: the id (12 hex digits) names it in listings and
    /// revocations, the rest is 256 random bits.
    public static func generate() -> (id: String, secret: String) {
        var generator = SystemRandomNumberGenerator()
        let id = hex((0..<6).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let random = hex((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
        return (id, "silo_\(id)_\(random)")
    }

    /// What is stored instead of the secret. Secrets carry 256 random bits, so one unsalted SHA-256 is
    /// as strong as a slow password hash would be, and costs a microsecond per request.
    public static func digest(_ secret: String) -> String {
        SHA256Hasher.hash(Array(secret.utf8)).hex
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// Workspace names follow the rules of volume names: 1–64 of `[A-Za-z0-9._-]`; `tmp` is reserved
    /// (``LocalBlobStore`` keeps its temporary files there).
    public static func validateWorkspace(_ workspace: String) throws(SiloError) {
        guard (try? VolumeName(workspace)) != nil, workspace != "tmp" else {
            throw SiloError(
                .invalidName,
                "invalid workspace name '\(workspace.prefix(80))': use 1-64 letters, digits, '.', '_' or '-' ('tmp' is reserved)"
            )
        }
    }
}

/// ``TokenStore`` in the metadata database, over any ``SQLBackend``.
public final class SQLTokenStore: TokenStore {
    let backend: any SQLBackend

    /// The `tokens` table is part of the metadata schema (``SQLMetadataStore/migrations(_:)``): open the
    /// metadata store on `backend` first.
    public init(backend: any SQLBackend) {
        self.backend = backend
    }

    public func create(workspace: String, name: String, role: TokenRole, now: Int64) async throws -> API.Token {
        try TokenSecret.validateWorkspace(workspace)
        let (id, secret) = TokenSecret.generate()
        let digest = TokenSecret.digest(secret)
        try await backend.writeTransaction { db in
            try await db.raw(
                """
                INSERT INTO tokens (id, digest, workspace, name, admin, created_at, revoked_at)
                VALUES (\(bind: id), \(bind: digest), \(bind: workspace), \(bind: name), \(bind: role.level), \(bind: now), NULL)
                """
            ).run()
        }
        return API.Token(id: id, workspace: workspace, name: name, role: role, createdAtMilliseconds: now, token: secret)
    }

    public func authenticate(_ secret: String) async throws -> API.Token? {
        let digest = TokenSecret.digest(secret)
        return try await backend.readTransaction { db in
            try await db.raw("SELECT * FROM tokens WHERE digest = \(bind: digest) AND revoked_at IS NULL").all()
                .first.map(Self.decode)
        }
    }

    public func list(workspace: String?) async throws -> [API.Token] {
        try await backend.readTransaction { db in
            let rows: [any SQLRow]
            if let workspace {
                rows = try await db.raw(
                    "SELECT * FROM tokens WHERE workspace = \(bind: workspace) AND revoked_at IS NULL ORDER BY created_at, id"
                ).all()
            } else {
                rows = try await db.raw("SELECT * FROM tokens WHERE revoked_at IS NULL ORDER BY workspace, created_at, id").all()
            }
            return try rows.map(Self.decode)
        }
    }

    public func revoke(id: String, workspace: String?, upTo: TokenRole) async throws {
        try await backend.writeTransaction { db in
            let rows = try await db.raw("SELECT * FROM tokens WHERE id = \(bind: id) AND revoked_at IS NULL").all()
            let token = try rows.first.map(Self.decode)
            guard let token, workspace == nil || token.workspace == workspace, token.role <= upTo else {
                throw SiloError(.notFound, "no live token has id '\(id.prefix(80))'; `silo token list` shows them")
            }
            let now = VolumeStore.nowMilliseconds()
            try await db.raw("UPDATE tokens SET revoked_at = \(bind: now) WHERE id = \(bind: id)").run()
        }
    }

    static func decode(_ row: any SQLRow) throws -> API.Token {
        API.Token(
            id: try row.decode(column: "id", as: String.self),
            workspace: try row.decode(column: "workspace", as: String.self),
            name: try row.decode(column: "name", as: String.self),
            role: TokenRole(level: try row.decode(column: "admin", as: Int.self)) ?? .member,
            createdAtMilliseconds: try row.decode(column: "created_at", as: Int64.self),
            token: nil
        )
    }
}
