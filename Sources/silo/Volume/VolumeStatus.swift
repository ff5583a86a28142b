import ArgumentParser
import SiloCore
import SiloRuntime

struct VolumeStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what a mount holds: its version, uncommitted changes, and how its files are read.",
        discussion: """
            PATH is the mount point (or a path inside it) of a `silo mount`. Opens passed through are \
            read and written by the kernel straight from a local copy (the machine's cache, or the \
            mount's own changes); the rest are served by the mount process.
            """
    )

    @Argument(help: "Where the volume is mounted.")
    var path: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    struct Report: Encodable {
        var mountPoint: String
        var volume: String
        var version: Int64
        var changedPaths: Int
        var status: MountControl.Status
    }

    func run() async throws {
        do {
            let (record, answer) = try MountControl.ask(.status, mountAt: path, runtime: SiloEnvironment.mounts)
            guard let status = answer.status, let version = answer.version else {
                throw SiloError(.io, "the mount at \(record.mountPoint) sent no status; is it an older silo?")
            }
            if json {
                try Output.json(
                    Report(mountPoint: record.mountPoint, volume: record.volume, version: version, changedPaths: answer.changedPaths, status: status)
                )
                return
            }
            Output.line("\(record.mountPoint): '\(record.volume)' version \(version), \(status.writable ? "writable" : "read-only")")
            if status.writable { Output.line("uncommitted changes: \(answer.changedPaths) path(s)") }
            Output.line("passthrough: \(status.passthrough ? "on" : "off (opens are served by the mount process)")")
            Output.line("opens: \(status.passedThroughOpens) passed through, \(status.servedOpens) served; \(status.bytesServed) bytes served")
        } catch {
            throw ExitStatus.fail(error)
        }
    }
}
