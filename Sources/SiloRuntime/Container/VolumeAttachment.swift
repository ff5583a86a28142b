import SiloCore

/// One `-v` (or `--nfs`) attachment: a volume (or a new ephemeral one) at an absolute path inside the
/// container.
public struct VolumeAttachment: Codable, Equatable, Sendable {
    /// The volume's name; nil for an ephemeral volume made for this container (`-v :/path`).
    public var volume: String?
    /// Where it appears inside the container: absolute, normalised, never `/` itself.
    public var path: String
    public var readOnly: Bool
    /// The kind a volume made for the attachment gets (`--nfs` attaches shared ones); absent in
    /// records written before kinds, where it is snapshot.
    public var kind: VolumeKind?

    /// Parses `NAME:/path`, `NAME:/path:ro` or `:/path` (of `kind`: `-v` snapshot, `--nfs` shared).
    public init(parsing text: String, kind: VolumeKind = .snapshot) throws(SiloError) {
        self.kind = kind
        var parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        readOnly = false
        if parts.count == 3 {
            guard parts[2] == "ro" || parts[2] == "rw" else {
                throw SiloError(.invalidArgument, "-v \(text): the only options after the path are 'ro' and 'rw'")
            }
            readOnly = parts[2] == "ro"
            parts.removeLast()
        }
        guard parts.count == 2 else {
            throw SiloError(.invalidArgument, "-v \(text): write NAME:/path, NAME:/path:ro, or :/path for an ephemeral volume")
        }
        if parts[0].isEmpty {
            volume = nil
        } else {
            volume = try VolumeName(parts[0]).rawValue
        }
        guard parts[1].hasPrefix("/") else {
            throw SiloError(.invalidPath, "-v \(text): the path inside the container must be absolute, like /data")
        }
        let path = try VolumePath(parts[1])
        guard !path.isRoot else { throw SiloError(.invalidPath, "-v \(text): a volume cannot be attached at /") }
        self.path = "/" + path.rawValue
    }
}
