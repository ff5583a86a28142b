import ArgumentParser
import SiloCore

struct VolumeList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List volumes.")

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() async throws {
        try await SiloEnvironment.withService { service in
            let volumes = try await service.listVolumes()
            if json {
                try Output.json(volumes.map { VolumeJSON(name: $0.name.rawValue, version: $0.latestVersion.rawValue, createdAt: Output.time(milliseconds: $0.createdAtMilliseconds)) })
            } else if volumes.isEmpty {
                Output.note("no volumes yet; create one with `silo volume create NAME`")
            } else {
                Output.table(
                    ["NAME", "VERSION", "CREATED"],
                    volumes.map { [$0.name.rawValue, String($0.latestVersion.rawValue), Output.time(milliseconds: $0.createdAtMilliseconds)] }
                )
            }
        }
    }

    struct VolumeJSON: Encodable {
        var name: String
        var version: Int64
        var createdAt: String
    }
}
