import ArgumentParser
import SiloCore

struct VolumeHistory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "Show a volume's versions.")

    @Argument(help: "The volume.")
    var name: String

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() async throws {
        try await SiloEnvironment.withService { service in
            let versions = try await service.history(of: try VolumeName(name))
            if json {
                try Output.json(versions.map(VersionJSON.init))
                return
            }
            Output.table(
                ["VERSION", "TIME", "AUTHOR", "ADDED", "CHANGED", "REMOVED", "BYTES ADDED"],
                versions.map {
                    [
                        String($0.version.rawValue), Output.time(milliseconds: $0.createdAtMilliseconds), $0.author,
                        String($0.filesAdded), String($0.filesChanged), String($0.filesRemoved), Output.bytes($0.bytesAdded),
                    ]
                }
            )
        }
    }

    struct VersionJSON: Encodable {
        var version: Int64
        var time: String
        var author: String
        var filesAdded: Int64
        var filesChanged: Int64
        var filesRemoved: Int64
        var bytesAdded: Int64

        init(_ info: VersionInfo) {
            version = info.version.rawValue
            time = Output.time(milliseconds: info.createdAtMilliseconds)
            author = info.author
            filesAdded = info.filesAdded
            filesChanged = info.filesChanged
            filesRemoved = info.filesRemoved
            bytesAdded = info.bytesAdded
        }
    }
}
