import ArgumentParser
import SiloCore

struct VolumeLs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List a directory of a volume.")

    @Argument(help: "The volume.")
    var name: String

    @Argument(help: "A directory (or file) in the volume.")
    var path: String = "/"

    @Option(help: "List this version instead of the latest.")
    var version: Int64?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Flag(name: [.short, .long], help: "List everything beneath the directory, each by its full path.")
    var recursive = false

    func run() async throws {
        try await SiloEnvironment.withService { service in
            let name = try VolumeName(name)
            let path = try VolumePath(path)
            let version = version.map { Version($0) }
            guard let top = try await service.entry(at: path, in: name, version: version) else {
                throw SiloError(.pathNotFound, "\(path) does not exist in volume '\(name)'\(version.map { " at version \($0)" } ?? "")")
            }
            let entries =
                top.kind != .directory ? [top]
                : recursive ? try await service.tree(path, in: name, version: version) : try await service.list(path, in: name, version: version)
            if json {
                try Output.json(entries.map(EntryJSON.init))
                return
            }
            Output.table(
                ["TYPE", "SIZE", "MODIFIED", "NAME"],
                entries.map { entry in
                    let shown = top.kind == .directory && !recursive ? entry.path.name : entry.path.description
                    let suffix = entry.kind == .directory ? "/" : entry.kind == .symlink ? " -> \(entry.symlinkTarget ?? "")" : ""
                    return [
                        entry.kind.symbol, entry.kind == .file ? Output.bytes(entry.size) : "-",
                        Output.time(milliseconds: entry.mtimeNanoseconds / 1_000_000), shown + suffix,
                    ]
                }
            )
        }
    }

    struct EntryJSON: Encodable {
        var path: String
        var name: String
        var kind: String
        var size: Int64
        var mode: String
        var modifiedAt: String
        var version: Int64
        var target: String?
        /// The owner's ids, where the volume records one.
        var uid: UInt32?
        var gid: UInt32?
        /// The names of its extended attributes, if it has any.
        var xattrs: [String]?
        /// For a file of several names (hard links): the file's id, which its names share, and how many
        /// names it has.
        var file: String?
        var links: Int?
        /// A device node's numbers.
        var major: UInt32?
        var minor: UInt32?

        init(_ entry: Entry) {
            path = entry.path.description
            name = entry.path.name
            kind = entry.kind.rawValue
            size = entry.size
            mode = String(entry.mode, radix: 8)
            modifiedAt = Output.time(milliseconds: entry.mtimeNanoseconds / 1_000_000)
            version = entry.version.rawValue
            target = entry.symlinkTarget
            uid = entry.owner?.uid
            gid = entry.owner?.gid
            xattrs = entry.extendedAttributes.isEmpty ? nil : entry.extendedAttributes.keys.sorted()
            file = entry.fileID?.description
            links = entry.fileID == nil ? nil : entry.linkCount
            major = entry.device?.major
            minor = entry.device?.minor
        }
    }
}
