import ArgumentParser
import SiloCore

struct VolumeDiff: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "diff", abstract: "Show what changed between two versions of a volume.")

    @Argument(help: "The volume.")
    var name: String

    @Argument(help: "The older version.")
    var from: Int64

    @Argument(help: "The newer version (default: the latest).")
    var to: Int64?

    @Flag(help: "Print JSON instead of lines.")
    var json = false

    func run() async throws {
        try await SiloEnvironment.withService { service in
            let name = try VolumeName(name)
            var newer = try await service.volume(name).latestVersion
            if let to { newer = Version(to) }
            let changes = try await service.changes(in: name, from: Version(from), to: newer)
            if json {
                try Output.json(changes)
                return
            }
            for change in changes {
                let mark = change.kind == .added ? "+" : change.kind == .removed ? "-" : "M"
                Output.line("\(mark) \(change.path)\(change.entryKind == .directory ? "/" : "")")
            }
        }
    }
}
