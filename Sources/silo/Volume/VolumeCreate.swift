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
            do {
                let volume = try await service.createVolume(name, kind: kind)
                Output.line("created \(kind == .shared ? "shared " : "")volume '\(volume.name)'")
            } catch let error as SiloError where error.code == .volumeExists && allowExisting {
                let existing = try await service.volume(name)
                guard existing.kind == kind else {
                    throw SiloError(
                        .volumeExists,
                        "volume '\(name)' exists already as a \(existing.kind == .shared ? "shared" : "snapshot") volume; pick another name")
                }
                Output.line("volume '\(name)' exists already")
            }
        }
    }
}
