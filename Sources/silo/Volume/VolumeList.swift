import ArgumentParser
import SiloCore

struct VolumeList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List volumes.")

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() async throws {
        try await Self.list(json: json, only: nil)
    }

    /// Lists the workspace's volumes, of one kind if `only` says which.
    static func list(json: Bool, only: VolumeKind?) async throws {
        try await SiloEnvironment.withService { service in
            let volumes = try await service.listVolumes().filter { only == nil || $0.kind == only }
            if json {
                try Output.json(volumes.map {
                    VolumeJSON(
                        name: $0.name.rawValue, kind: $0.kind.rawValue, version: $0.latestVersion.rawValue,
                        createdAt: Output.time(milliseconds: $0.createdAtMilliseconds))
                })
            } else if volumes.isEmpty {
                Output.note(only == .shared ? "no shared volumes yet; create one with `silo nfs create NAME`" : "no volumes yet; create one with `silo volume create NAME`")
            } else {
                Output.table(
                    ["NAME", "KIND", "VERSION", "CREATED"],
                    volumes.map {
                        [$0.name.rawValue, $0.kind.rawValue, String($0.latestVersion.rawValue), Output.time(milliseconds: $0.createdAtMilliseconds)]
                    }
                )
            }
        }
    }

    struct VolumeJSON: Encodable {
        var name: String
        var kind: String
        var version: Int64
        var createdAt: String
    }
}
