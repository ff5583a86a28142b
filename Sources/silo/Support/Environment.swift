import Foundation
import Logging
import SiloClient
import SiloCore

/// Where the CLI finds its store: `$SILO_HOME`, else `$XDG_DATA_HOME/silo`, else `~/.local/share/silo`.
enum SiloEnvironment {
    static var home: String {
        let environment = ProcessInfo.processInfo.environment
        if let home = environment["SILO_HOME"], !home.isEmpty { return home }
        if let data = environment["XDG_DATA_HOME"], !data.isEmpty { return data + "/silo" }
        return NSHomeDirectory() + "/.local/share/silo"
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
        let service: any VolumeService
        do {
            service = try await EmbeddedVolumeService.open(home: home, author: author, logger: logger)
        } catch {
            throw ExitStatus.fail(error)
        }
        do {
            let result = try await body(service)
            try await service.close()
            return result
        } catch {
            try? await service.close()
            throw ExitStatus.fail(error)
        }
    }
}
