import ArgumentParser
import SiloCore

struct VolumeRm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a file or directory from a volume, as one commit.")

    @Argument(help: "The volume.")
    var name: String

    @Argument(help: "The path to remove.")
    var path: String

    @Flag(name: [.short, .customLong("recursive")], help: "Remove a directory and everything in it.")
    var recursive = false

    func run() async throws {
        try await SiloEnvironment.withService { service in
            let name = try VolumeName(name)
            let path = try VolumePath(path)
            let result = try await service.commit(
                Changeset([.remove(path, recursive: recursive)]), to: name, options: CommitOptions(author: SiloEnvironment.author)
            )
            Output.line("removed \(path) from '\(name)', version \(result.version.version)")
        }
    }
}
