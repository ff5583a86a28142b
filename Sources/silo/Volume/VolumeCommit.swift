import ArgumentParser
import SiloCore
import SiloRuntime

struct VolumeCommit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "commit",
        abstract: "Commit the changes made in a mount as a new version of its volume.",
        discussion: """
            PATH is the mount point (or a path inside it) of a writable `silo mount`. The mount stays \
            usable while the commit runs; files still open for writing are taken as written so far. \
            Other writers' commits do not appear in the mount until `silo volume reload PATH`.
            """
    )

    @Argument(help: "Where the volume is mounted.")
    var path: String

    func run() async throws {
        do {
            let (record, answer) = try MountControl.ask(
                .commit(author: SiloEnvironment.author), mountAt: path, runtime: SiloEnvironment.mounts
            )
            if let version = answer.version {
                Output.line("committed \(answer.changedPaths) changed path(s) in \(record.mountPoint) as version \(version) of '\(record.volume)'")
            } else {
                Output.line("nothing to commit in \(record.mountPoint)")
            }
        } catch {
            throw ExitStatus.fail(error)
        }
    }
}
