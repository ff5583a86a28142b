import Foundation
import SiloStore
import SiloWire

/// What `silo serve` runs with; every limit has a default fit for one machine.
public struct ServerConfiguration: Sendable {
    /// Where the admin token lives, and by default the metadata database and the blocks.
    public var dataDirectory: String
    /// Where metadata and blocks live when not under ``dataDirectory``.
    public var storeOverride: StoreConfiguration?
    public var host: String
    /// 0 picks a free port; the server prints the one it bound.
    public var port: Int

    /// Largest commit body (JSON changeset): 64 MiB holds about 200k changed files.
    public var maxCommitBytes = 64 * 1024 * 1024
    /// Largest body of any other JSON request.
    public var maxJSONBytes = 4 * 1024 * 1024
    /// Largest request header line and header block: room for the longest valid request line, a
    /// 4096-character path of 4-byte characters, percent-encoded (48 KiB), with its other parameters.
    public var maxHeaderBytes = 64 * 1024
    /// A connection that sends or accepts nothing for this long is closed.
    public var idleTimeoutSeconds: Int64 = 60
    /// Block uploads one token may have in flight; more are refused with 429 until some finish.
    public var uploadsPerToken = 32
    /// Request bodies (block uploads, commits) held in memory at once, across all clients; more wait
    /// for a 503 and a retry. One request is always admitted, however large.
    public var memoryBudgetBytes = 1024 * 1024 * 1024
    /// Per workspace: bytes of blocks it may hold, and volumes it may have (no limit when nil).
    public var workspaceMaxBytes: Int64?
    public var workspaceMaxVolumes: Int?
    /// Threads doing block file I/O.
    public var ioThreads = 4
    /// PEM files of the certificate chain and private key to serve HTTPS with; plain HTTP without.
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    /// `/metrics` answers only requests with a server admin token (scrapers send it as a bearer token).
    public var privateMetrics = false

    public init(dataDirectory: String, host: String = "127.0.0.1", port: Int = 7433) {
        self.dataDirectory = dataDirectory
        self.host = host
        self.port = port
    }

    public var adminTokenPath: String { dataDirectory + "/admin-token" }

    /// Paths of this machine that answers never name (replaced by `DATA`), longest first.
    public var privatePaths: [String] {
        var paths = [dataDirectory]
        switch store.metadata {
        case .sqlite(let path): paths.append((path as NSString).deletingLastPathComponent)
        }
        switch store.blocks {
        case .directory(let path): paths.append(path)
        }
        return Array(Set(paths)).sorted { $0.count > $1.count }
    }

    /// The store the server opens: ``storeOverride``, else the data directory's own layout.
    public var store: StoreConfiguration { storeOverride ?? .local(home: dataDirectory) }

    public var usesTLS: Bool { tlsCertificatePath != nil }

    /// Whether the listener is reachable from this machine only.
    public var listensOnLoopback: Bool { isLoopbackHost(host) }
}
