import ArgumentParser
import Foundation
import SiloCore
import SiloMount

struct VolumeRecover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "List, commit or discard the uncommitted changes of mounts whose process died.",
        discussion: """
            A writable mount journals its uncommitted changes about once a second beside their data \
            ($SILO_HOME/mounts/ID/). If its process dies (killed, crashed), they stay there. Without ID this \
            lists them; with ID, --commit commits them to their volume as a new version (on top of the \
            latest, last writer wins per path, as any commit) and --discard removes them.
            """
    )

    @Argument(help: "The ID `silo volume recover` lists.")
    var id: String?

    @Flag(help: "Commit the changes to their volume.")
    var commit = false

    @Flag(help: "Remove the changes for good.")
    var discard = false

    @Flag(help: "Print JSON instead of a table (listing).")
    var json = false

    func validate() throws {
        guard !(commit && discard) else { throw ValidationError("--commit and --discard exclude each other") }
        guard id == nil || commit || discard else { throw ValidationError("with an ID, say --commit or --discard") }
        guard id != nil || !(commit || discard) else { throw ValidationError("--commit and --discard need the ID to act on") }
    }

    func run() async throws {
        let abandoned = AbandonedChanges.find(under: SiloEnvironment.mounts)
        guard let id else {
            if json {
                try Output.json(abandoned.map(Listing.init))
            } else if abandoned.isEmpty {
                Output.note("no uncommitted changes were left by a mount that died")
            } else {
                Output.table(["ID", "VOLUME", "VERSION", "CHANGED", "LAST JOURNALED"], abandoned.map(Self.row))
            }
            return
        }
        guard let found = abandoned.first(where: { $0.id == id }) else {
            throw ExitStatus.fail(SiloError(.notFound, "no changes of a dead mount have ID '\(id.escapedForDisplay)'; `silo volume recover` lists them"))
        }
        if discard {
            found.discard()
            Output.note("discarded \(found.changedPaths) uncommitted change(s) of '\(found.volume ?? "?")' (\(found.dataFiles) data file(s))")
            return
        }
        guard found.volume != nil else {
            throw ExitStatus.fail(
                SiloError(.storage, "the mount died before it journaled its changes; its \(found.dataFiles) data file(s) are in \(found.directory)/scratch/data")
            )
        }
        try await SiloEnvironment.withService { service in
            let result = try await found.commit(service: service, author: SiloEnvironment.author)
            if let result {
                Output.line("committed \(result.changedPaths) recovered change(s) as version \(result.result.version.version) of '\(found.volume!)'")
            } else {
                Output.line("nothing left to commit; removed \(found.directory)")
            }
        }
    }

    static func row(_ changes: AbandonedChanges) -> [String] {
        [
            changes.id, changes.volume ?? "(no journal)", changes.base.map(String.init) ?? "-", "\(changes.changedPaths)",
            changes.savedAtMilliseconds.map { Output.time(milliseconds: $0) } ?? "-",
        ]
    }

    struct Listing: Encodable {
        var id: String
        var volume: String?
        var version: Int64?
        var changedPaths: Int
        var dataFiles: Int
        var savedAtMilliseconds: Int64?
        init(_ changes: AbandonedChanges) {
            id = changes.id
            volume = changes.volume
            version = changes.base
            changedPaths = changes.changedPaths
            dataFiles = changes.dataFiles
            savedAtMilliseconds = changes.savedAtMilliseconds
        }
    }
}
