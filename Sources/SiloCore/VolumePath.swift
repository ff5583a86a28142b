/// A validated path inside a volume, relative to its root.
///
/// Written with or without a leading `/` (both mean the volume's root); `.` and empty components are
/// dropped. Rejected: `..`, NUL and other control bytes in names, components over 255 bytes, paths over
/// 4096 bytes. The root itself is ``root``, whose ``rawValue`` is the empty string.
public struct VolumePath: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    /// Components joined by `/`, no leading or trailing slash; empty for the root.
    public let rawValue: String

    public static let root = VolumePath(trusted: "")
    public static let maximumLength = 4096
    public static let maximumComponentLength = 255

    public init(_ text: String) throws(SiloError) {
        guard text.utf8.count <= Self.maximumLength else {
            throw SiloError(.invalidPath, "path is \(text.utf8.count) bytes long; the limit is \(Self.maximumLength)")
        }
        var components: [Substring] = []
        for component in text.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." {
                throw SiloError(
                    .invalidPath,
                    "invalid path '\(text.escapedForDisplay)': '..' is not allowed; name paths from the volume's root"
                )
            }
            if component.utf8.count > Self.maximumComponentLength {
                throw SiloError(.invalidPath, "invalid path '\(text.escapedForDisplay)': a name is longer than 255 bytes")
            }
            if component.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
                throw SiloError(
                    .invalidPath,
                    "invalid path '\(text.escapedForDisplay)': names may not contain NUL or control characters"
                )
            }
            components.append(component)
        }
        self.rawValue = components.joined(separator: "/")
    }

    /// A path read back from a store, which validated it when it was written.
    public init(trusted rawValue: String) {
        self.rawValue = rawValue
    }

    public var isRoot: Bool { rawValue.isEmpty }

    /// The last component; empty for the root.
    public var name: String {
        guard let slash = rawValue.utf8.lastIndex(of: UInt8(ascii: "/")) else { return rawValue }
        return String(rawValue[rawValue.index(after: slash)...])
    }

    /// The directory holding this path; the root's parent is the root.
    public var parent: VolumePath {
        guard let slash = rawValue.utf8.lastIndex(of: UInt8(ascii: "/")) else { return .root }
        return VolumePath(trusted: String(rawValue[..<slash]))
    }

    /// Every proper ancestor except the root, outermost first: `a/b/c` gives `a`, `a/b`.
    public var ancestors: [VolumePath] {
        var result: [VolumePath] = []
        var current = parent
        while !current.isRoot {
            result.append(current)
            current = current.parent
        }
        return result.reversed()
    }

    public var components: [String] {
        rawValue.split(separator: "/").map(String.init)
    }

    public func appending(_ name: String) throws(SiloError) -> VolumePath {
        try VolumePath(isRoot ? name : rawValue + "/" + name)
    }

    /// Whether `self` is `other` or lies beneath it.
    public func isWithin(_ other: VolumePath) -> Bool {
        other.isRoot || rawValue == other.rawValue || rawValue.hasPrefix(other.rawValue + "/")
    }

    /// The path as users write it, with a leading `/`.
    public var description: String { "/" + rawValue }

    public static func < (lhs: Self, rhs: Self) -> Bool { Array(lhs.rawValue.utf8).lexicographicallyPrecedes(rhs.rawValue.utf8) }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        try self.init(container.decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
