import ArgumentParser
import Foundation
import SiloCore
import SiloRuntime

/// What `silo run` and `silo container start` share: attachments, commits, environment.
struct ContainerOptions: ParsableArguments {
    @Option(name: [.customShort("v"), .customLong("volume")], help: "NAME:/path[:ro] to attach a volume, :/path for an ephemeral one (repeatable).")
    var volumes: [String] = []

    @Option(name: .customLong("nfs"), help: "NAME:/path[:ro] to attach a shared volume (made if missing), :/path for an ephemeral one (repeatable).")
    var sharedVolumes: [String] = []

    @Flag(help: "Commit each volume every few seconds while changed, and once more when the container ends.")
    var backgroundCommits = false

    @Option(help: "Seconds between background commits.")
    var commitInterval: Double = 5

    @Option(name: .customLong("env"), help: "K=V set in the container's environment (repeatable).")
    var environment: [String] = []

    @Option(help: "The directory commands start in inside the container.")
    var workdir: String = "/"

    @Flag(help: "Refuse volume names that do not exist instead of creating them.")
    var noCreate = false

    @Flag(inversion: .prefixedNo, help: "Let the kernel read and write cached and local files directly (FUSE passthrough).")
    var passthrough = true

    @Flag(help: "Let programs get and set extended attributes in the volumes; every write then costs one more request.")
    var xattrs = false

    func validate() throws {
        if commitInterval <= 0 { throw ValidationError("--commit-interval must be positive") }
        for pair in environment where !pair.contains("=") || pair.hasPrefix("=") {
            throw ValidationError("--env \(pair): write KEY=VALUE")
        }
        guard workdir.hasPrefix("/") else { throw ValidationError("--workdir must be an absolute path") }
    }

    /// The attachments, checked: valid names and paths, no path attached twice.
    func attachments() throws(SiloError) -> [VolumeAttachment] {
        var result: [VolumeAttachment] = []
        for (text, kind) in volumes.map({ ($0, VolumeKind.snapshot) }) + sharedVolumes.map({ ($0, VolumeKind.shared) }) {
            let attachment = try VolumeAttachment(parsing: text, kind: kind)
            if let other = result.first(where: {
                $0.path == attachment.path || $0.path.hasPrefix(attachment.path + "/") || attachment.path.hasPrefix($0.path + "/")
            }) {
                throw SiloError(.invalidArgument, "-v \(text): \(attachment.path) overlaps \(other.path), attached already")
            }
            result.append(attachment)
        }
        return result
    }

    /// What the container's runtime needs of these options, its attachments checked.
    func settings(author: String) throws(SiloError) -> ContainerSettings {
        ContainerSettings(
            attachments: try attachments(), noCreate: noCreate, backgroundCommits: backgroundCommits, commitInterval: commitInterval,
            passthrough: passthrough, extendedAttributes: xattrs, environment: environment, workdir: workdir, author: author
        )
    }

    /// The arguments that give a supervisor these options.
    var arguments: [String] {
        var result: [String] = []
        for volume in volumes { result += ["--volume", volume] }
        for volume in sharedVolumes { result += ["--nfs", volume] }
        if backgroundCommits { result += ["--background-commits", "--commit-interval", "\(commitInterval)"] }
        for pair in environment { result += ["--env", pair] }
        result += ["--workdir", workdir]
        if noCreate { result.append("--no-create") }
        if !passthrough { result.append("--no-passthrough") }
        if xattrs { result.append("--xattrs") }
        return result
    }
}
