import ArgumentParser
import SiloCore

struct VolumeCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create an empty volume.")

    @Argument(help: "The volume's name: 1-64 characters of letters, digits, '.', '_' and '-'.")
    var name: String

    @Flag(help: "A shared volume (the seed's SharedVolume): every close, rename, unlink or mkdir in a mount is committed at once and seen by every other mount.")
    var shared = false

    @Flag(help: "Succeed if a volume of this name and kind exists already.")
    var allowExisting = false

    func run() async throws {
        try await Self.create(name, kind: shared ? .shared : .snapshot, allowExisting: allowExisting)
    }

    static func create(_ name: String, kind: VolumeKind, allowExisting: Bool) async throws {
        try await SiloEnvironment.withService { service in
            let name = try VolumeName(name)
            guard allowExisting else {
                let volume = try await service.createVolume(name, kind: kind)
                return Output.line("created \(kind == .shared ? "shared " : "")volume '\(volume.name)'")
            }
            let (volume, created) = try await service.createVolumeIfMissing(name, kind: kind)
            Output.line(created ? "created \(kind == .shared ? "shared " : "")volume '\(volume.name)'" : "volume '\(name)' exists already")
        }
    }
}
