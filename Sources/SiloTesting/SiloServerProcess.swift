import Foundation

/// A real `silo serve` on a free loopback port, over a data directory, for integration tests.
public final class SiloServerProcess: @unchecked Sendable {
    public let dataDirectory: String
    /// Flags for `silo serve` beyond the data directory, address and log level (`--uploads-per-token 1`).
    public let arguments: [String]
    public private(set) var url = ""
    private var process: Process?
    private var logPath: String { dataDirectory + ".log" }

    /// Starts the server and returns once it has printed the address it listens on.
    public init(dataDirectory: String, arguments: [String] = []) throws {
        self.dataDirectory = dataDirectory
        self.arguments = arguments
        try start()
    }

    /// Starts a server as ``init(dataDirectory:arguments:)`` does, waiting on a thread of its own, so
    /// an async caller holds no thread of the shared pool meanwhile.
    public static func launch(dataDirectory: String, arguments: [String] = []) async throws -> SiloServerProcess {
        try await onOwnThread { try SiloServerProcess(dataDirectory: dataDirectory, arguments: arguments) }
    }

    /// Stops the server as ``stop(signal:)`` does, waiting on a thread of its own.
    public func stopped() async {
        _ = try? await onOwnThread { [self] in stop() }
    }

    /// The admin token the server wrote on its first start.
    public var adminToken: String {
        (try? String(contentsOfFile: dataDirectory + "/admin-token", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    public var processIdentifier: Int32 { process?.processIdentifier ?? 0 }

    /// Starts (or restarts) the server on a new free port.
    public func start() throws {
        let (process, text) = try SiloBinary(home: dataDirectory).startReadingFirstLine(
            ["serve", "--data", dataDirectory, "--listen", "127.0.0.1:0", "--log-level", "warning"] + arguments, log: logPath
        )
        self.process = process
        guard let range = text.range(of: "listening on ") else {
            process.waitUntilExit()
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw SiloServerError(message: "silo serve did not start (status \(process.terminationStatus)): \(log)")
        }
        url = String(text[range.upperBound...])
    }

    /// Sends `signal` and waits for the server to exit; returns its exit status.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM) -> Int32 {
        guard let process else { return 0 }
        if process.isRunning { kill(process.processIdentifier, signal) }
        process.waitUntilExit()
        self.process = nil
        return process.terminationStatus
    }

    /// What the server wrote to standard error.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit { stop() }
}

public struct SiloServerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
