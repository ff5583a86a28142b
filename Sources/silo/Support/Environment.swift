import Foundation
import Logging
import SiloClient
import SiloRuntime
import SiloCore
import SiloStore

/// Where the CLI finds its store: the server named by `$SILO_SERVER` (with `$SILO_TOKEN`) when set;
/// otherwise the embedded store under `$SILO_HOME`, else `$XDG_DATA_HOME/silo`, else `~/.local/share/silo`.
enum SiloEnvironment {
    /// The server's address, when the CLI is to use one.
    static var server: String? {
        guard let server = ProcessInfo.processInfo.environment["SILO_SERVER"], !server.isEmpty else { return nil }
        return server
    }

    static var token: String { ProcessInfo.processInfo.environment["SILO_TOKEN"] ?? "" }

    static func openService(logger: Logger) async throws -> any VolumeService {
        if let server {
            return try remoteService(server)
        }
        return try await EmbeddedVolumeService.open(home: home, author: author, logger: logger)
    }

    /// The client of the server at `server`, with the trust and transport settings of the environment.
    static func remoteService(_ server: String) throws -> RemoteVolumeService {
        let environment = ProcessInfo.processInfo.environment
        return try RemoteVolumeService(
            url: server, token: token, author: author,
            caCertificate: environment["SILO_CA_CERT"].flatMap { $0.isEmpty ? nil : $0 },
            allowInsecure: environment["SILO_ALLOW_INSECURE"] == "1"
        )
    }

    /// The server's token service, for commands that only exist against a server.
    static func withTokens<R>(_ body: (any TokenService) async throws -> R) async throws -> R {
        guard let server else {
            throw ExitStatus.fail(
                SiloError(.invalidArgument, "this command talks to a server: set SILO_SERVER (and SILO_TOKEN to an admin token)")
            )
        }
        return try await using({ try remoteService(server) as any TokenService }, close: { try await $0.close() }, body)
    }

    static var home: String { EmbeddedVolumeService.defaultHome }

    /// `home`, made (or tightened to) mode 0700 first: what mounts, containers and their logs are kept
    /// beneath is private to its user.
    static func privateHome() throws -> String {
        try FileIO.makePrivateDirectory(home)
        return home
    }

    /// Where running mounts keep their runtime directories (`PID/`: changes, control socket, record).
    static var mounts: String { MountControl.runtimeDirectory(home: home) }

    /// The records of the containers running with this SILO_HOME.
    static var containers: ContainerRecords { ContainerRecords(home: home) }

    /// The machine's content cache, shared by every mount using it: `$SILO_CACHE`, else
    /// `$SILO_HOME/cache`; it holds at most `$SILO_CACHE_SIZE` bytes (`500M`, `20G`, …), else a tenth
    /// of its disk.
    static func contentCache() throws -> ContentCache {
        let environment = ProcessInfo.processInfo.environment
        let home = try privateHome()
        let root = environment["SILO_CACHE"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/cache"
        var capacity = ContentCache.defaultCapacity(for: root)
        if let text = environment["SILO_CACHE_SIZE"], !text.isEmpty {
            guard let bytes = byteCount(text) else {
                throw SiloError(.invalidArgument, "SILO_CACHE_SIZE '\(text)' is not a size like 500M or 20G")
            }
            capacity = bytes
        }
        return try ContentCache(root: root, capacity: capacity)
    }

    /// `123`, `500K`, `20G`, … (powers of 1024) as bytes.
    static func byteCount(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = text.uppercased()
        var unit: Int64 = 1
        if let last = digits.last, let scale = units[last] {
            unit = scale
            digits.removeLast()
        }
        guard let number = Int64(digits), number > 0 else { return nil }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: unit)
        return overflow ? nil : bytes
    }

    /// Recorded as the author of each commit: `user@host`.
    static var author: String {
        let user = ProcessInfo.processInfo.environment["USER"] ?? NSUserName()
        return "\(user.isEmpty ? "unknown" : user)@\(ProcessInfo.processInfo.hostName)"
    }

    /// Opens the service, runs `body`, closes the service, and turns errors into a one-line message and
    /// an exit status (see ``ExitStatus``).
    static func withService<R>(_ body: (any VolumeService) async throws -> R) async throws -> R {
        var logger = Logger(label: "silo")
        logger.logLevel = .warning
        return try await using({ try await openService(logger: logger) }, close: { try await $0.close() }, body)
    }

    /// Opens a client, runs `body` with it and closes it, whatever happens; errors become a one-line
    /// message and an exit status.
    private static func using<Client, R>(
        _ open: () async throws -> Client, close: (Client) async throws -> Void, _ body: (Client) async throws -> R
    ) async throws -> R {
        let client: Client
        do {
            client = try await open()
        } catch {
            throw ExitStatus.fail(error)
        }
        do {
            let result = try await body(client)
            try await close(client)
            return result
        } catch {
            try? await close(client)
            throw ExitStatus.fail(error)
        }
    }
}
