import ArgumentParser
import SiloCore

struct VolumeCp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cp",
        abstract: "Copy files or directories within a volume, as one commit; no data is transferred.",
        discussion: "With several sources, or when DST is an existing directory, each source is copied into DST."
    )

    @Argument(help: "The volume.")
    var name: String

    @Argument(help: "Sources, then the destination.")
    var paths: [String] = []

    func run() async throws {
        try await SiloEnvironment.withService { service in
            let name = try VolumeName(name)
            guard paths.count >= 2 else {
                throw SiloError(.invalidArgument, "cp needs at least one source and a destination: silo volume cp NAME SRC... DST")
            }
            let sources = try paths[..<(paths.count - 1)].map { try VolumePath($0) }
            let destination = try VolumePath(paths.last!)
            let destinationKind = try await service.entry(at: destination, in: name, version: nil)?.kind
            let into = sources.count > 1 || paths.last!.hasSuffix("/") || destinationKind == .directory
            var changes: [Change] = []
            for source in sources {
                guard let top = try await service.entry(at: source, in: name, version: nil) else {
                    throw SiloError(.pathNotFound, "\(source) does not exist in volume '\(name)'")
                }
                let target = into ? try destination.appending(source.isRoot ? name.rawValue : source.name) : destination
                if target.isWithin(source) && top.kind == .directory {
                    throw SiloError(.invalidArgument, "cannot copy \(source) into itself (\(target))")
                }
                let entries = top.kind == .directory ? [top] + (try await service.tree(source, in: name, version: nil)) : [top]
                for entry in entries {
                    let suffix = entry.path == source ? "" : String(entry.path.rawValue.dropFirst(source.isRoot ? 0 : source.rawValue.count + 1))
                    let path = suffix.isEmpty ? target : try target.appending(suffix)
                    switch entry.kind {
                    case .directory:
                        changes.append(.makeDirectory(path, mode: entry.mode, mtimeNanoseconds: entry.mtimeNanoseconds))
                    case .symlink:
                        changes.append(.symlink(path, target: entry.symlinkTarget ?? "", mtimeNanoseconds: entry.mtimeNanoseconds))
                    case .file:
                        guard let content = entry.content else { throw SiloError(.storage, "\(entry.path) has no recorded content") }
                        changes.append(.put(path, FilePut(content: content, size: entry.size, mode: entry.mode, mtimeNanoseconds: entry.mtimeNanoseconds)))
                    }
                }
            }
            let result = try await service.commit(Changeset(changes), to: name, options: CommitOptions(author: SiloEnvironment.author))
            Output.line("copied \(sources.count) path\(sources.count == 1 ? "" : "s") to \(destination) in '\(name)', version \(result.version.version)")
        }
    }
}
