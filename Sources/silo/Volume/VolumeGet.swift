import ArgumentParser
import SiloClient
import SiloCore

struct VolumeGet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Download a file or directory from a volume.",
        discussion: """
            LOCAL defaults to ./NAME-OF-REMOTE; an existing local directory receives LOCAL/NAME-OF-REMOTE; '-' writes \
            a file to standard output. Existing local files are not overwritten unless --force is given.
            """
    )

    @Argument(help: "The volume to read from.")
    var name: String

    @Argument(help: "A path in the volume.")
    var remote: String

    @Argument(help: "Where to write it, or '-' for standard output.", completion: .file())
    var local: String?

    @Option(help: "Read this version instead of the latest.")
    var version: Int64?

    @Flag(name: [.short, .long], help: "Overwrite local files.")
    var force = false

    @Flag(help: "Keep set-user-ID, set-group-ID and sticky bits (dropped by default, as tar does for non-root users).")
    var preserveMode = false

    func run() async throws {
        try await SiloEnvironment.withService { service in
            let name = try VolumeName(name)
            let progress = ProgressLine(verb: "downloading")
            defer { progress.finish() }
            let result = try await Downloader(service: service, preserveSpecialModeBits: preserveMode).get(
                try VolumePath(remote), in: name, version: version.map { Version($0) }, to: local, force: force,
                progress: local == "-" ? nil : progress.handler
            )
            progress.finish()
            if result.destination != "-" {
                Output.note("got \(result.files) file\(result.files == 1 ? "" : "s") (\(Output.bytes(result.bytes))) into \(result.destination)")
            }
        }
    }
}
