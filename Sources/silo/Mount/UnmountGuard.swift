import ArgumentParser
import SiloRuntime

/// Runs a mount's unmount guard (``SiloRuntime/UnmountGuard``). Not for direct use.
struct UnmountGuardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: UnmountGuard.command, shouldDisplay: false)

    @Argument var mountPoint: String

    func run() throws {
        UnmountGuard.watch(mountPoint)
    }
}
