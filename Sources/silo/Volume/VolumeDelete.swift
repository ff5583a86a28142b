import ArgumentParser
import Foundation
import SiloCore

struct VolumeDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a volume, its history and its data.",
        discussion: "Asks for confirmation on a terminal; elsewhere --yes is required."
    )

    @Argument(help: "The volume to delete.")
    var name: String

    @Flag(name: [.short, .long], help: "Delete without asking.")
    var yes = false

    @Flag(help: "Succeed if no volume of this name exists.")
    var allowMissing = false

    func run() async throws {
        try await SiloEnvironment.withService { service in
            let name = try VolumeName(name)
            let volume: VolumeInfo
            do {
                volume = try await service.volume(name)
            } catch let error as SiloError where error.code == .volumeNotFound && allowMissing {
                Output.line("no volume '\(name)' to delete")
                return
            }
            if !yes {
                guard isatty(STDIN_FILENO) != 0 else {
                    throw SiloError(.invalidArgument, "deleting volume '\(name)' removes all its data; pass --yes to confirm")
                }
                FileHandle.standardError.write(Data("Delete volume '\(name)' (\(volume.latestVersion) versions) and all its data? [y/N] ".utf8))
                guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                    Output.note("not deleted")
                    return
                }
            }
            do {
                try await service.deleteVolume(name)
            } catch let error as SiloError where error.code == .volumeNotFound && allowMissing {
                Output.line("no volume '\(name)' to delete")  // another deleted it meanwhile
                return
            }
            Output.line("deleted volume '\(name)'")
        }
    }
}
