import AsyncHTTPClient
import NIOSSL
import Foundation
import NIOCore
import NIOHTTP1
import SiloCore
import SiloWire

/// The ``VolumeService`` of a `silo serve` server, over its `/v1/` HTTP API.
///
/// Every call that is safe to repeat is retried on transient failures (no connection, a dropped
/// connection, 429, 502–504) with backoff: reads; block uploads, which are idempotent by hash; and
/// commits, which carry a client-chosen commit id so a retry after a lost answer returns the version
/// the first attempt made instead of applying twice.
public final class RemoteVolumeService: VolumeService {
    public let baseURL: String
    public let author: String
    private let token: String
    private let client: HTTPClient
    private let retry: RetryPolicy

    /// How often and how long to retry a transient failure.
    public struct RetryPolicy: Sendable {
        public var attempts: Int
        public var firstDelayMilliseconds: Int
        public var maximumDelayMilliseconds: Int
        public init(attempts: Int = 7, firstDelayMilliseconds: Int = 100, maximumDelayMilliseconds: Int = 2000) {
            self.attempts = attempts
            self.firstDelayMilliseconds = firstDelayMilliseconds
            self.maximumDelayMilliseconds = maximumDelayMilliseconds
        }
    }

    /// `url` is the server's base address, `https://host:port` (or `http://` on loopback).
    ///
    /// A token is a bearer secret: it is sent in clear text over `http://`, so that is refused for any
    /// host but this machine unless `allowInsecure` (`SILO_ALLOW_INSECURE=1`). `caCertificate` is a PEM
    /// file of the certificate authority (or the self-signed certificate) to trust besides the system's
    /// (`SILO_CA_CERT`).
    public init(
        url: String, token: String, author: String, retry: RetryPolicy = RetryPolicy(),
        caCertificate: String? = nil, allowInsecure: Bool = false
    ) throws(SiloError) {
        var base = url.trimmingCharacters(in: .whitespaces)
        while base.hasSuffix("/") { base.removeLast() }
        guard let parsed = URL(string: base), ["http", "https"].contains(parsed.scheme ?? ""), let host = parsed.host else {
            throw SiloError(.invalidArgument, "SILO_SERVER '\(url)' is not a server address like https://silo.example.com:7433")
        }
        if parsed.scheme == "http", !isLoopbackHost(host), !allowInsecure {
            throw SiloError(
                .invalidArgument,
                "refusing to send a token in clear text to \(base): use https:// (`silo serve --tls-cert … --tls-key …`), or set SILO_ALLOW_INSECURE=1 on a network you trust"
            )
        }
        guard !token.isEmpty else {
            throw SiloError(.unauthorized, "SILO_SERVER is set but SILO_TOKEN is not; set it to a token from `silo token create`")
        }
        self.baseURL = base
        self.token = token
        self.author = author
        self.retry = retry
        var configuration = HTTPClient.Configuration(
            timeout: .init(connect: .seconds(10), read: .seconds(120)),
            connectionPool: .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 16)
        )
        configuration.httpVersion = .http1Only
        if let caCertificate {
            guard FileManager.default.isReadableFile(atPath: caCertificate) else {
                throw SiloError(.localFile, "SILO_CA_CERT names \(caCertificate), which is not a readable file")
            }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.additionalTrustRoots = [.file(caCertificate)]
            configuration.tlsConfiguration = tls
        }
        // A refused connection fails the request at once; this client's own retries (bounded, with
        // backoff) decide what happens next, rather than the pool waiting out the connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    // MARK: VolumeService

    public func createVolume(_ name: VolumeName, kind: VolumeKind) async throws -> VolumeInfo {
        try await json(.POST, "volumes", body: API.VolumeNameBody(name: name, author: author, kind: kind), retrying: false)
    }

    public func volume(_ name: VolumeName) async throws -> VolumeInfo {
        try await json(.GET, "volumes/\(name)")
    }

    public func locks(_ call: LockCall, in volume: VolumeName) async throws -> FileLock? {
        // A take or release retried after a lost answer lands the same way again.
        let answer: API.LockAnswer = try await json(.POST, "volumes/\(volume)/locks", body: call)
        return answer.conflict
    }

    public func listVolumes() async throws -> [VolumeInfo] {
        try await json(.GET, "volumes")
    }

    public func renameVolume(_ name: VolumeName, to newName: VolumeName) async throws {
        let _: VolumeInfo = try await json(.PATCH, "volumes/\(name)", body: API.VolumeNameBody(name: newName), retrying: false)
    }

    public func deleteVolume(_ name: VolumeName) async throws {
        _ = try await send(.DELETE, "volumes/\(name)", retrying: false)
    }

    public func history(of volume: VolumeName) async throws -> [VersionInfo] {
        try await json(.GET, "volumes/\(volume)/versions")
    }

    public func entry(at path: VolumePath, in volume: VolumeName, version: Version?) async throws -> Entry? {
        do {
            return try await json(.GET, "volumes/\(volume)/entry", query: Self.query(path, version))
        } catch let error as SiloError where error.code == .pathNotFound {
            return nil
        }
    }

    public func list(_ path: VolumePath, in volume: VolumeName, version: Version?) async throws -> [Entry] {
        try await json(.GET, "volumes/\(volume)/list", query: Self.query(path, version))
    }

    public func tree(_ path: VolumePath, in volume: VolumeName, version: Version?) async throws -> [Entry] {
        try await json(.GET, "volumes/\(volume)/tree", query: Self.query(path, version))
    }

    public func changes(in volume: VolumeName, from: Version, to: Version) async throws -> [PathChange] {
        try await json(.GET, "volumes/\(volume)/changes", query: [("from", "\(from.rawValue)"), ("to", "\(to.rawValue)")])
    }

    public func missingBlocks(_ hashes: [BlockHash]) async throws -> [BlockHash] {
        guard !hashes.isEmpty else { return [] }
        var missing: [BlockHash] = []
        // Batches keep each request well under the server's JSON limit.
        for start in stride(from: 0, to: hashes.count, by: 10_000) {
            let batch = Array(hashes[start..<min(hashes.count, start + 10_000)])
            let answer: API.Missing = try await json(.POST, "blocks/missing", body: API.Hashes(hashes: batch))
            missing += answer.missing
        }
        return missing
    }

    public func uploadBlock(_ block: Block) async throws {
        _ = try await send(.PUT, "blocks/\(block.hash.hex)", body: ByteBuffer(bytes: block.bytes))
    }

    public func readBlock(_ hash: BlockHash) async throws -> Block {
        let body = try await send(.GET, "blocks/\(hash.hex)", limit: BlockLayout.allowedBlockSizes.upperBound)
        let block: Block
        do {
            block = try Block(bytes: Array(buffer: body), expected: hash)
        } catch {
            throw SiloError(.corruptBlock, "block \(hash.hex) arrived from \(baseURL) with bytes that do not match its hash")
        }
        return block
    }

    public var blocksAreLocal: Bool { false }

    public func commit(_ changeset: Changeset, to volume: VolumeName, options: CommitOptions) async throws -> CommitResult {
        let request = API.CommitRequest(
            commitID: options.commitID ?? UUID().uuidString, author: options.author, changes: changeset.changes
        )
        return try await json(.POST, "volumes/\(volume)/commits", body: request)
    }

    public func close() async throws {
        try await client.shutdown()
    }

    // MARK: Tokens (admin)

    public func createToken(workspace: String?, name: String?, role: TokenRole) async throws -> API.Token {
        try await json(.POST, "tokens", body: API.TokenRequest(workspace: workspace, name: name, role: role), retrying: false)
    }

    public func listTokens(workspace: String?) async throws -> [API.Token] {
        try await json(.GET, "tokens", query: workspace.map { [("workspace", $0)] } ?? [])
    }

    public func revokeToken(id: String) async throws {
        _ = try await send(.DELETE, "tokens/\(Self.percentEncoded(id))", retrying: false)
    }

    // MARK: HTTP

    static func tlsError(_ error: any Error, _ baseURL: String) -> SiloError {
        SiloError(
            .unavailable,
            "the TLS connection to \(baseURL) failed (\(error)); if the server's certificate is self-signed or from your own authority, set SILO_CA_CERT to its PEM file",
            underlying: error
        )
    }

    private static func query(_ path: VolumePath, _ version: Version?) -> [(String, String)] {
        var items = [("path", path.rawValue)]
        if let version { items.append(("version", "\(version.rawValue)")) }
        return items
    }

    private static let queryValueAllowed: CharacterSet = {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/")
        return allowed
    }()

    private static func percentEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: queryValueAllowed) ?? text
    }

    private func json<T: Decodable>(
        _ method: HTTPMethod, _ route: String, query: [(String, String)] = [], retrying: Bool = true
    ) async throws -> T {
        try decode(try await send(method, route, query: query, retrying: retrying))
    }

    private func json<T: Decodable>(
        _ method: HTTPMethod, _ route: String, body: some Encodable, retrying: Bool = true
    ) async throws -> T {
        let data = try JSONEncoder().encode(body)
        return try decode(try await send(method, route, body: ByteBuffer(data: data), retrying: retrying))
    }

    private func decode<T: Decodable>(_ buffer: ByteBuffer) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: buffer))
        } catch {
            throw SiloError(.storage, "the server at \(baseURL) sent an answer this client cannot read: \(error)")
        }
    }

    /// Sends one request, retrying transient failures when `retrying`; returns the body of a 2xx answer
    /// and throws the server's error for any other.
    private func send(
        _ method: HTTPMethod, _ route: String, query: [(String, String)] = [], body: ByteBuffer? = nil,
        limit: Int = 512 * 1024 * 1024, retrying: Bool = true
    ) async throws -> ByteBuffer {
        var url = "\(baseURL)/v1/\(route)"
        if !query.isEmpty {
            url += "?" + query.map { "\($0.0)=\(Self.percentEncoded($0.1))" }.joined(separator: "&")
        }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "User-Agent", value: "silo")
        if let body {
            request.headers.add(name: "Content-Type", value: method == .PUT ? "application/octet-stream" : "application/json")
            request.body = .bytes(body)
        }
        var delay = retry.firstDelayMilliseconds
        var attempt = 1
        while true {
            let failure: SiloError
            switch await attemptOnce(request, limit: limit) {
            case .success(let bytes): return bytes
            case .failure(.final(let error)): throw error
            case .failure(.transient(let error)): failure = error
            }
            guard retrying, attempt < retry.attempts else { throw failure }
            try await Task.sleep(for: .milliseconds(delay))
            delay = min(delay * 2, retry.maximumDelayMilliseconds)
            attempt += 1
        }
    }

    private enum Failure: Error {
        /// Worth another attempt: no connection, a dropped one, or the server asked to come back later.
        case transient(SiloError)
        case final(SiloError)
    }

    private func attemptOnce(_ request: HTTPClientRequest, limit: Int) async -> Result<ByteBuffer, Failure> {
        do {
            let response = try await client.execute(request, timeout: .seconds(300))
            let bytes = try await response.body.collect(upTo: limit)
            if (200..<300).contains(response.status.code) { return .success(bytes) }
            let error = Self.error(status: response.status, body: bytes)
            return .failure([429, 502, 503, 504].contains(response.status.code) ? .transient(error) : .final(error))
        } catch let error as NIOSSLError {
            return .failure(.final(Self.tlsError(error, baseURL)))
        } catch let error as BoringSSLError {
            return .failure(.final(Self.tlsError(error, baseURL)))
        } catch let error as NIOTooManyBytesError {
            return .failure(.final(SiloError(.storage, "the server at \(baseURL) sent more than \(limit) bytes", underlying: error)))
        } catch {
            return .failure(
                .transient(
                    SiloError(
                        .unavailable,
                        "cannot reach the Silo server at \(baseURL) (\(error)); check that `silo serve` runs there and SILO_SERVER names it",
                        underlying: error
                    )
                )
            )
        }
    }

    private static func error(status: HTTPResponseStatus, body: ByteBuffer) -> SiloError {
        if let decoded = try? JSONDecoder().decode(API.ErrorBody.self, from: Data(buffer: body)) {
            return decoded.error
        }
        return SiloError(.storage, "the server answered \(status.code) \(status.reasonPhrase)")
    }
}
