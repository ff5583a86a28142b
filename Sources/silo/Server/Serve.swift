import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import SiloCore
import SiloServer
import SiloStore

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the store over HTTP, for clients with SILO_SERVER and SILO_TOKEN set.",
        discussion: """
            On first start the server creates an admin token for workspace 'default' and writes it to \
            admin-token in the data directory. Clients send it (or a token made with `silo token create`) \
            as SILO_TOKEN. SIGTERM or SIGINT stops the server gracefully: commits in flight finish, new \
            ones are answered 503. Listening beyond loopback, give --tls-cert and --tls-key: tokens are \
            bearer secrets, and clients refuse plain http:// to another host unless SILO_ALLOW_INSECURE=1.
            """
    )

    @Option(help: "Directory of the metadata database and blocks (default: the embedded store's, $SILO_HOME).")
    var data: String?

    @Option(help: "Where metadata lives, as a URL: sqlite:///path/metadata.sqlite (default: DATA/metadata.sqlite; or $SILO_METADATA).")
    var metadata: String?

    @Option(help: "Where blocks live, as a URL: file:///path/blocks (default: DATA/blocks; or $SILO_BLOCKS).")
    var blocks: String?

    @Option(help: "Address to listen on, HOST:PORT; port 0 picks a free one.")
    var listen = "127.0.0.1:7433"

    @Option(help: "Largest commit body in MiB.")
    var maxCommitMib = 64

    @Option(help: "Block uploads one token may have in flight.")
    var uploadsPerToken = 32

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    @Option(help: "Serve HTTPS with this PEM certificate (chain); clients trust it through the system or SILO_CA_CERT.")
    var tlsCert: String?

    @Option(help: "The PEM private key of --tls-cert.")
    var tlsKey: String?

    @Flag(help: "Answer /metrics only to requests carrying a server admin token.")
    var privateMetrics = false

    @Option(help: "Request bodies held in memory at once, in MiB; requests beyond get 503 and are retried.")
    var memoryBudgetMib = 1024

    @Option(help: "Bytes of blocks each workspace may hold, e.g. 500G (no limit by default).")
    var workspaceMaxBytes: String?

    @Option(help: "Volumes each workspace may have (no limit by default).")
    var workspaceMaxVolumes: Int?

    func validate() throws {
        guard Self.parse(listen: listen) != nil else {
            throw ValidationError("--listen takes HOST:PORT, e.g. 127.0.0.1:7433, not '\(listen)'")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level is one of trace, debug, info, notice, warning, error")
        }
        guard maxCommitMib > 0, uploadsPerToken > 0 else {
            throw ValidationError("--max-commit-mib and --uploads-per-token must be positive")
        }
        guard memoryBudgetMib > 0, workspaceMaxVolumes.map({ $0 >= 0 }) ?? true else {
            throw ValidationError("--memory-budget-mib must be positive and --workspace-max-volumes not negative")
        }
        if let workspaceMaxBytes, SiloEnvironment.byteCount(workspaceMaxBytes) == nil {
            throw ValidationError("--workspace-max-bytes takes a size like 500M or 20G, not '\(workspaceMaxBytes)'")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
        do {
            _ = try storeConfiguration(data: "/")
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// The store to open: the data directory's layout, with --metadata / --blocks (else
    /// $SILO_METADATA / $SILO_BLOCKS) in place of either part.
    func storeConfiguration(data: String) throws(SiloError) -> StoreConfiguration {
        let environment = ProcessInfo.processInfo.environment
        return try StoreConfiguration.resolve(
            home: data, metadata: metadata ?? environment["SILO_METADATA"], blocks: blocks ?? environment["SILO_BLOCKS"])
    }

    static func parse(listen: String) -> (host: String, port: Int)? {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
            (0...65535).contains(port), colon != listen.startIndex
        else { return nil }
        return (String(listen[..<colon]), port)
    }

    func run() async throws {
        let (host, port) = Self.parse(listen: listen)!
        let directory = data ?? SiloEnvironment.home
        var configuration = ServerConfiguration(dataDirectory: directory, host: host, port: port)
        configuration.storeOverride = try storeConfiguration(data: directory)
        configuration.maxCommitBytes = maxCommitMib * 1024 * 1024
        configuration.uploadsPerToken = uploadsPerToken
        configuration.tlsCertificatePath = tlsCert
        configuration.tlsKeyPath = tlsKey
        configuration.privateMetrics = privateMetrics
        configuration.memoryBudgetBytes = memoryBudgetMib * 1024 * 1024
        configuration.workspaceMaxBytes = workspaceMaxBytes.flatMap(SiloEnvironment.byteCount)
        configuration.workspaceMaxVolumes = workspaceMaxVolumes
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "silo.serve")
        do {
            let scheme = configuration.usesTLS ? "https" : "http"
            try await SiloServer.run(configuration, registry: registry, logger: logger) { host, port in
                // One line on stdout, for scripts (and tests) that start the server on port 0.
                Output.line("silo serve: listening on \(scheme)://\(host):\(port)")
            }
        } catch {
            throw ExitStatus.fail(error)
        }
    }
}
