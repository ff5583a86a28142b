import ArgumentParser
import SiloCore

struct VolumeCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create an empty volume.")

    @Argument(help: "The volume's name: 1-64 characters of letters, digits, '.', '_' and '-'.")
    var name: String

    func run() async throws {
        try await SiloEnvironment.withService { service in
            let volume = try await service.createVolume(try VolumeName(name))
            Output.line("created volume '\(volume.name)'")
        }
    }
}
