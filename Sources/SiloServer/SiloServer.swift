import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import SiloCore
import SiloWire
import SiloStore

/// `silo serve`: the store under a data directory as an HTTP service.
public enum SiloServer {
    /// Runs until SIGTERM or SIGINT, then drains: commits in flight finish, new ones get 503, and the
    /// server stops once they are done. `onListening` receives the bound address (useful with port 0).
    public static func run(
        _ configuration: ServerConfiguration,
        registry: PrometheusCollectorRegistry,
        logger: Logger,
        onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }
    ) async throws {
        let threadPool = NIOThreadPool(numberOfThreads: configuration.ioThreads)
        threadPool.start()
        try FileIO.makePrivateDirectory(configuration.dataDirectory)
        let (store, backend) = try await VolumeStore.open(configuration.store, logger: logger, threadPool: threadPool)
        do {
            let tokens = SQLTokenStore(backend: backend)
            try await ensureAdminToken(tokens, configuration: configuration, logger: logger)
            let commits = CommitGate()
            let router = makeRouter(
                store: store, tokens: tokens, configuration: configuration, commits: commits, registry: registry
            )
            let http: HTTPServerBuilder = .http1(
                configuration: .init(
                    idleTimeout: .seconds(configuration.idleTimeoutSeconds),
                    httpDecoderConfiguration: .init(
                        maxHeaderFieldSize: configuration.maxHeaderBytes,
                        maxHeaderListSize: configuration.maxHeaderBytes,
                        maxHeaderFieldCount: 100
                    )
                )
            )
            if !configuration.usesTLS && !configuration.listensOnLoopback {
                logger.warning(
                    "listening on \(configuration.host) without TLS: tokens and data cross the network in clear text; give --tls-cert and --tls-key"
                )
            }
            let app = Application(
                router: router,
                server: try tlsConfiguration(configuration).map { try .tls(http, tlsConfiguration: $0) } ?? http,
                configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "silo"),
                onServerRunning: { channel in
                    onListening(configuration.host, channel.localAddress?.port ?? configuration.port)
                },
                logger: logger
            )
            // Services stop in reverse order: the drain first (refusing new commits, waiting for those in
            // flight), then the HTTP server, which finishes the requests it has.
            let group = ServiceGroup(
                configuration: .init(
                    services: [.init(service: app), .init(service: CommitDrain(gate: commits, logger: logger))],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            try await group.run()
        } catch {
            try? await store.metadata.close()
            try? await threadPool.shutdownGracefully()
            throw error
        }
        try await store.metadata.close()
        try await threadPool.shutdownGracefully()
        logger.info("stopped")
    }

    /// The server's TLS set-up from its certificate and key files, or nil for plain HTTP.
    static func tlsConfiguration(_ configuration: ServerConfiguration) throws -> TLSConfiguration? {
        guard let certificate = configuration.tlsCertificatePath else { return nil }
        guard let key = configuration.tlsKeyPath else {
            throw SiloError(.invalidArgument, "--tls-cert needs --tls-key, the certificate's private key")
        }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            return TLSConfiguration.makeServerConfiguration(
                certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            )
        } catch {
            throw SiloError(.invalidArgument, "cannot load the TLS certificate \(certificate) or key \(key): \(error)")
        }
    }

    static func makeRouter(
        store: VolumeStore, tokens: any TokenStore, configuration: ServerConfiguration, commits: CommitGate,
        registry: PrometheusCollectorRegistry
    ) -> Router<SiloRequestContext> {
        let router = Router(context: SiloRequestContext.self)
        router.add(middleware: ErrorMiddleware(privatePaths: configuration.privatePaths))
        router.add(middleware: LogRequestsMiddleware(.info))
        router.add(middleware: MetricsMiddleware())
        router.get("healthz") { _, _ in
            JSONBody.response(["status": "ok"])
        }
        router.get("metrics") { request, _ in
            if configuration.privateMetrics {
                let token = try await AuthMiddleware.authenticate(request, tokens: tokens)
                guard token.role == .serverAdmin else {
                    throw SiloError(.forbidden, "this server shows /metrics to server admin tokens only")
                }
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
            )
        }
        router.get("v1/openapi.json") { _, _ in
            guard let document = OpenAPIDocument.bytes else {
                throw SiloError(.notFound, "openapi.json was not installed beside the silo binary (silo_SiloServer.resources/)")
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: document))
            )
        }
        let api = router.group("v1").add(middleware: AuthMiddleware(tokens: tokens))
        VolumeRoutes(
            store: store, tokens: tokens, configuration: configuration, commits: commits,
            uploads: UploadLimiter(limit: configuration.uploadsPerToken),
            memory: MemoryBudget(limit: configuration.memoryBudgetBytes)
        ).register(on: api)
        return router
    }

    /// On first start (no server admin yet), creates one in workspace `default` and writes it, readable
    /// by its owner only, to `admin-token` in the data directory. The file is written under a new name
    /// (`O_EXCL | O_NOFOLLOW`) and renamed into place, so a link planted at that path is replaced, never
    /// followed.
    static func ensureAdminToken(_ tokens: any TokenStore, configuration: ServerConfiguration, logger: Logger) async throws {
        guard try await !tokens.list(workspace: nil).contains(where: { $0.role == .serverAdmin }) else { return }
        let token = try await tokens.create(workspace: "default", name: "admin", role: .serverAdmin, now: VolumeStore.nowMilliseconds())
        let path = configuration.adminTokenPath
        try FileIO.replaceFile(at: path, with: Array((token.token! + "\n").utf8))
        logger.notice("created the server admin token (workspace 'default'); it is in \(path)")
    }
}

/// The first service to stop on SIGTERM: refuses new commits and waits for those in flight.
struct CommitDrain: Service {
    let gate: CommitGate
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        let inFlight = await gate.commitsInFlight
        logger.notice("shutting down; new commits get 503", metadata: ["commits_in_flight": "\(inFlight)"])
        await gate.drain()
    }
}

/// The OpenAPI 3 description of the API: `openapi.json` in this target, which the build copies into
/// `silo_SiloServer.resources` beside the executable.
enum OpenAPIDocument {
    static let bytes: [UInt8]? = {
        // Looked up by hand rather than through `Bundle.module`, whose accessor stops the process when
        // the resource directory was not installed alongside the binary.
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")).map {
            URL(fileURLWithPath: $0).deletingLastPathComponent()
        }
        for directory in [executable, Bundle.main.bundleURL].compactMap({ $0 }) {
            let url = directory.appendingPathComponent("silo_SiloServer.resources/openapi.json")
            if let data = try? Data(contentsOf: url) { return Array(data) }
        }
        return nil
    }()
}
