/// A validated path inside a volume, relative to its root.
///
/// Written with or without a leading `/` (both mean the volume's root); `.` and empty components are
/// dropped. Rejected: `..`, NUL and other control bytes in names, components over 255 bytes, paths over
/// 4096 bytes. The root itself is ``root``, whose ``rawValue`` is the empty string.
///
/// Paths are bytes, as the kernel and the store see them: components are split at `/` bytes, and two
/// paths are equal only when their UTF-8 bytes are (an NFC `é` and an NFD `é` are two names). Swift's
/// own `String` comparison, which treats canonically equivalent text as equal and splits on grapheme
/// clusters, is never used on paths.
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
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for component in text.utf8.split(separator: Self.slash, omittingEmptySubsequences: true) {
            if component.elementsEqual([UInt8(ascii: ".")]) { continue }
            if component.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                throw SiloError(
                    .invalidPath,
                    "invalid path '\(text.escapedForDisplay)': '..' is not allowed; name paths from the volume's root"
                )
            }
            if component.count > Self.maximumComponentLength {
                throw SiloError(.invalidPath, "invalid path '\(text.escapedForDisplay)': a name is longer than 255 bytes")
            }
            if component.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
                throw SiloError(
                    .invalidPath,
                    "invalid path '\(text.escapedForDisplay)': names may not contain NUL or control characters"
                )
            }
            if !bytes.isEmpty { bytes.append(Self.slash) }
            bytes.append(contentsOf: component)
        }
        // Splitting valid UTF-8 at an ASCII byte leaves valid UTF-8: no replacement can occur here.
        self.rawValue = String(decoding: bytes, as: UTF8.self)
    }

    static let slash = UInt8(ascii: "/")

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
        rawValue.utf8.split(separator: Self.slash).map { String(decoding: $0, as: UTF8.self) }
    }

    public func appending(_ name: String) throws(SiloError) -> VolumePath {
        try VolumePath(isRoot ? name : rawValue + "/" + name)
    }

    /// Whether `self` is `other` or lies beneath it.
    public func isWithin(_ other: VolumePath) -> Bool {
        guard !other.isRoot else { return true }
        let mine = rawValue.utf8
        let theirs = other.rawValue.utf8
        guard mine.starts(with: theirs) else { return false }
        let rest = mine.dropFirst(theirs.count)
        return rest.isEmpty || rest.first == Self.slash
    }

    /// The path as users write it, with a leading `/`.
    public var description: String { "/" + rawValue }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue.utf8.lexicographicallyPrecedes(rhs.rawValue.utf8) }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.rawValue.utf8.elementsEqual(rhs.rawValue.utf8) }

    public func hash(into hasher: inout Hasher) {
        let hashed: Void? = rawValue.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if hashed == nil {
            for byte in rawValue.utf8 { hasher.combine(byte) }
        }
        hasher.combine(0xFF as UInt8)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        try self.init(container.decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
