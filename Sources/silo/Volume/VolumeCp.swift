import ArgumentParser
import SiloCore

struct VolumeCp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cp",
        abstract: "Copy files or directories within a volume, as one commit; no data is transferred.",
        discussion: "With several sources, or when DST is an existing directory, each source is copied into DST."
    )

    @Argument(help: "The volume.")
    var name: String

    @Argument(help: "Sources, then the destination.")
    var paths: [String] = []

    func run() async throws {
        try await SiloEnvironment.withService { service in
            let name = try VolumeName(name)
            guard paths.count >= 2 else {
                throw SiloError(.invalidArgument, "cp needs at least one source and a destination: silo volume cp NAME SRC... DST")
            }
            let sources = try paths[..<(paths.count - 1)].map { try VolumePath($0) }
            let destination = try VolumePath(paths.last!)
            let result = try await service.copy(
                sources, to: destination, into: paths.last!.hasSuffix("/"), in: name, options: CommitOptions(author: SiloEnvironment.author)
            )
            Output.line("copied \(sources.count) path\(sources.count == 1 ? "" : "s") to \(destination) in '\(name)', version \(result.version.version)")
        }
    }
}
