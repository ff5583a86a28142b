import ArgumentParser
import SiloCore
import SiloRuntime

struct VolumeReload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Move a mount to its volume's latest version, keeping its uncommitted changes.",
        discussion: "PATH is the mount point (or a path inside it) of a writable `silo mount`."
    )

    @Argument(help: "Where the volume is mounted.")
    var path: String

    func run() async throws {
        do {
            let (record, answer) = try MountControl.ask(.reload, mountAt: path, runtime: SiloEnvironment.mounts)
            let kept = answer.changedPaths == 0 ? "" : "; \(answer.changedPaths) uncommitted change(s) kept on top"
            Output.line("\(record.mountPoint) shows version \(answer.version ?? 0) of '\(record.volume)'\(kept)")
        } catch {
            throw ExitStatus.fail(error)
        }
    }
}
