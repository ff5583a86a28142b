import CSiloSystem
import ArgumentParser
import Foundation
import Logging
import SiloClient
import SiloCore
import SiloRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The process at the heart of a container, started by `silo run` and `silo container start` inside a
/// mount namespace of its own (util-linux's `unshare --mount --propagation private`): it attaches each
/// volume at its path there, so nothing outside the container sees the mounts, then runs the command
/// (`silo run`) or waits to be stopped (`silo container start`), and at the end makes the final
/// background commits or reports what is discarded. Not for direct use.
struct ContainerSupervise: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "supervise", shouldDisplay: false)

    @Option var id: String
    @Flag(help: "Keep the mounts until SIGTERM instead of running a command.") var keep = false
    /// Descriptors holding this container's places on machine mounts (``MachineMount``), open
    /// across the exec that started this process; the command is not to inherit them.
    @Option(help: .hidden) var hold: [Int32] = []
    @OptionGroup var options: ContainerOptions
    @Argument(parsing: .postTerminator) var command: [String] = []

    func run() async throws {
        var logger = Logger(label: "silo.container")
        logger.logLevel = .warning
        // Handlers first: a signal that comes while the volumes attach is kept, and acted on (passed
        // to the command, or ending the container) once there is something to act on.
        for number in keep ? [SIGTERM, SIGINT, SIGHUP] : ChildProcess.forwarded { _ = silo_forward_signal(number) }
        for fd in hold { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let service: any VolumeService
        let cache: ContentCache
        do {
            cache = try SiloEnvironment.contentCache()
            service = try await SiloEnvironment.openService(logger: logger)
        } catch {
            throw ExitStatus.fail(error)
        }
        let records = ContainerRecords(home: SiloEnvironment.home)
        let container = Container(id: id, service: service, records: records, mounts: SiloEnvironment.mounts, home: SiloEnvironment.home)
        let settings: ContainerSettings
        do {
            settings = try options.settings(author: SiloEnvironment.author)
            try await container.attach(settings, cache: cache)
            try container.record(settings)
        } catch {
            await container.end()
            try? await service.close()
            throw ExitStatus.fail(error)
        }
        let status: Int32
        if keep {
            Output.line("started \(id)")
            status = await container.serveUntilStopped()
        } else {
            status = await container.runCommand(command, settings: settings, binary: ContainerLaunch.binary, home: SiloEnvironment.home)
        }
        let messages = await container.end()
        for message in messages { FileHandle.standardError.write(Data("silo: \(message)\n".utf8)) }
        if keep {
            // For `silo container stop`, which waits for this process's lock, then prints it.
            try? Data(messages.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: records.endingPath(id)))
            unlink(records.path(id))
        } else {
            records.remove(id)
        }
        try? await service.close()
        throw ExitCode(status)
    }
}
