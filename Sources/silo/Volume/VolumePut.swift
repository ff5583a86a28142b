import ArgumentParser
import SiloClient
import SiloCore

struct VolumePut: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put",
        abstract: "Upload a local file or directory into a volume, as one commit.",
        discussion: """
            REMOTE defaults to /NAME-OF-LOCAL. A directory's contents go at REMOTE itself, every time (put \
            ./tree /tree again updates /tree, as Modal's volume put does; put ./tree / fills the root). A \
            file goes inside REMOTE when REMOTE ends in '/' or is an existing directory. Existing files \
            are not overwritten unless --force is given.
            """
    )

    @Argument(help: "The volume to write to.")
    var name: String

    @Argument(help: "A local file or directory.", completion: .file())
    var local: String

    @Argument(help: "Where it goes in the volume.")
    var remote: String?

    @Flag(name: [.short, .long], help: "Overwrite files that already exist in the volume.")
    var force = false

    func run() async throws {
        try await SiloEnvironment.withService { service in
            let name = try VolumeName(name)
            _ = try await service.volume(name)
            let uploader = Uploader(service: service)
            let target = try await uploader.resolveTarget(local: local, remote: remote, in: name)
            let progress = ProgressLine(verb: "uploading")
            defer { progress.finish() }
            let result = try await uploader.put(
                local: local, to: target, in: name, force: force,
                options: CommitOptions(author: SiloEnvironment.author), progress: progress.handler
            )
            progress.finish()
            for path in result.skipped { Output.note("skipped \(path): not a regular file, directory or symlink") }
            Output.line(
                "put \(result.files) file\(result.files == 1 ? "" : "s") (\(Output.bytes(result.bytes))) at \(result.target) in '\(name)', version \(result.commit.version.version)"
            )
        }
    }
}
