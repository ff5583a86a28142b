import Foundation
import Logging
import NIOPosix
import SiloCore

/// Where a store keeps its metadata and its blocks, each named by a URL:
///
/// - metadata: `sqlite:///absolute/path/metadata.sqlite` (PostgreSQL's `postgres://…` comes with the
///   scale-out work);
/// - blocks: `file:///absolute/path/blocks` (S3's `s3://bucket/prefix?endpoint=…` likewise).
///
/// ``local(home:)`` is the embedded store's layout, and every default: `HOME/metadata.sqlite` and
/// `HOME/blocks`. ``VolumeStore/open(_:logger:threadPool:)`` opens what a configuration names.
public struct StoreConfiguration: Sendable, Equatable, CustomStringConvertible {
    public enum Metadata: Sendable, Equatable {
        /// A SQLite database file (created, private to its owner, if missing).
        case sqlite(path: String)
    }

    public enum Blocks: Sendable, Equatable {
        /// A directory of block files (created, private to its owner, if missing).
        case directory(path: String)
    }

    public var metadata: Metadata
    public var blocks: Blocks

    public init(metadata: Metadata, blocks: Blocks) {
        self.metadata = metadata
        self.blocks = blocks
    }

    /// The embedded store's layout under `home`.
    public static func local(home: String) -> StoreConfiguration {
        StoreConfiguration(metadata: .sqlite(path: home + "/metadata.sqlite"), blocks: .directory(path: home + "/blocks"))
    }

    /// `home`'s layout with either part replaced by a URL (nil or empty keeps the default); what
    /// `silo serve --metadata URL --blocks URL` and `SILO_METADATA` / `SILO_BLOCKS` give.
    public static func resolve(home: String, metadata: String?, blocks: String?) throws(SiloError) -> StoreConfiguration {
        var configuration = local(home: home)
        if let metadata, !metadata.isEmpty { configuration.metadata = try Metadata(url: metadata) }
        if let blocks, !blocks.isEmpty { configuration.blocks = try Blocks(url: blocks) }
        return configuration
    }

    public var description: String { "metadata \(metadata.url), blocks \(blocks.url)" }
}

extension StoreConfiguration.Metadata {
    /// Parses a metadata URL; the error says which forms are understood.
    public init(url text: String) throws(SiloError) {
        let (scheme, path) = try StoreConfiguration.split(text, role: "metadata")
        switch scheme {
        case "sqlite": self = .sqlite(path: path)
        default:
            throw SiloError(
                .invalidArgument,
                "metadata URL '\(text)': this build keeps metadata in SQLite only; write sqlite:///absolute/path/metadata.sqlite"
            )
        }
    }

    public var url: String {
        switch self {
        case .sqlite(let path): "sqlite://" + path
        }
    }
}

extension StoreConfiguration.Blocks {
    /// Parses a blocks URL; the error says which forms are understood.
    public init(url text: String) throws(SiloError) {
        let (scheme, path) = try StoreConfiguration.split(text, role: "blocks")
        switch scheme {
        case "file": self = .directory(path: path)
        default:
            throw SiloError(
                .invalidArgument, "blocks URL '\(text)': this build keeps blocks in a local directory only; write file:///absolute/path/blocks")
        }
    }

    public var url: String {
        switch self {
        case .directory(let path): "file://" + path
        }
    }
}

extension StoreConfiguration {
    /// `scheme://` and an absolute path (no host, no `..`, no NUL), from a URL of either part.
    static func split(_ text: String, role: String) throws(SiloError) -> (scheme: String, path: String) {
        guard let separator = text.range(of: "://") else {
            throw SiloError(.invalidArgument, "\(role) URL '\(text)' has no scheme; write it as scheme:///absolute/path")
        }
        let scheme = text[..<separator.lowerBound].lowercased()
        let path = String(text[separator.upperBound...])
        guard !scheme.isEmpty else { throw SiloError(.invalidArgument, "\(role) URL '\(text)' has no scheme") }
        // The local schemes name a file on this machine: sqlite:///p and file:///p, host empty.
        if scheme == "sqlite" || scheme == "file" {
            guard path.hasPrefix("/"), !path.utf8.contains(0), !path.split(separator: "/").contains("..") else {
                throw SiloError(
                    .invalidPath, "\(role) URL '\(text)' must name an absolute path on this machine without '..', as \(scheme):///var/lib/silo/…")
            }
        }
        return (scheme, path)
    }
}

extension VolumeStore {
    /// Opens (creating if needed) the store a configuration names, and returns its database too,
    /// which the server also keeps its tokens in. Block I/O runs on `threadPool` when one is given.
    public static func open(
        _ configuration: StoreConfiguration, logger: Logger, threadPool: NIOThreadPool? = nil
    ) async throws -> (store: VolumeStore, backend: any SQLBackend) {
        let blobs: any BlobStore
        switch configuration.blocks {
        case .directory(let path):
            try FileIO.makePrivateDirectory(path)
            let local = try LocalBlobStore(root: path, threadPool: threadPool)
            local.removeStaleTemporaries()
            blobs = local
        }
        let backend: any SQLBackend
        switch configuration.metadata {
        case .sqlite(let path):
            _ = try FileIO.makeDirectories((path as NSString).deletingLastPathComponent, mode: 0o700)
            // SQLite gives its -wal and -shm files the database file's mode: create it private first.
            close(try FileIO.open(path, flags: O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode: 0o600))
            backend = try await SQLiteBackend.open(path: path, logger: logger)
        }
        do {
            let metadata = try await SQLMetadataStore(backend: backend)
            return (VolumeStore(metadata: metadata, blobs: blobs), backend)
        } catch {
            try? await backend.close()
            throw error
        }
    }
}
