import ArgumentParser
import SiloCore

/// `silo nfs`: shared volumes under the names Modal gives them (`modal nfs`). They are volumes of the
/// shared kind, so every `silo volume` command works on them too.
struct NfsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nfs",
        abstract: "Create, list and move data in and out of shared volumes (NetworkFileSystem).",
        discussion: """
            A shared volume's mounts see each other's writes: every close, fsync, rename, unlink or mkdir
            in a mount is a commit of its own, seen by every other mount at its next open. Mount one with
            `silo mount NAME PATH`, or attach it to a run or container with `--nfs NAME:/path`.
            """,
        subcommands: [NfsCreate.self, NfsList.self, VolumeLs.self, VolumePut.self, VolumeGet.self, VolumeRm.self, VolumeDelete.self]
    )
}

struct NfsCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create an empty shared volume.")

    @Argument(help: "The volume's name: 1-64 characters of letters, digits, '.', '_' and '-'.")
    var name: String

    @Flag(help: "Succeed if a shared volume of this name exists already.")
    var allowExisting = false

    func run() async throws {
        try await VolumeCreate.create(name, kind: .shared, allowExisting: allowExisting)
    }
}

struct NfsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List shared volumes.")

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() async throws {
        try await VolumeList.list(json: json, only: .shared)
    }
}
