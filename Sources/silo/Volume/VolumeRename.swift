import ArgumentParser
import SiloCore

struct VolumeRename: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rename", abstract: "Rename a volume, keeping its data and history.")

    @Argument(help: "The volume's current name.")
    var old: String

    @Argument(help: "Its new name.")
    var new: String

    func run() async throws {
        try await SiloEnvironment.withService { service in
            let old = try VolumeName(old)
            let new = try VolumeName(new)
            try await service.renameVolume(old, to: new)
            Output.line("renamed volume '\(old)' to '\(new)'")
        }
    }
}
