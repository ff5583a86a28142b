/// A volume's name: 1–64 characters of `[A-Za-z0-9._-]`, unique within a workspace.
public struct VolumeName: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public let rawValue: String

    public static let maximumLength = 64

    public init(_ rawValue: String) throws(SiloError) {
        guard !rawValue.isEmpty, rawValue.utf8.count <= Self.maximumLength else {
            throw SiloError(
                .invalidName,
                "invalid volume name '\(rawValue.escapedForDisplay)': a name has 1 to \(Self.maximumLength) characters"
            )
        }
        guard rawValue.utf8.allSatisfy(Self.isAllowed), rawValue != ".", rawValue != ".." else {
            throw SiloError(
                .invalidName,
                "invalid volume name '\(rawValue.escapedForDisplay)': use only letters, digits, '.', '_' and '-' (and not '.' or '..' alone)"
            )
        }
        self.rawValue = rawValue
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        try self.init(container.decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

extension StringProtocol {
    /// The string with control characters escaped, safe to show inside an error message.
    public var escapedForDisplay: String {
        var out = ""
        for scalar in unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += scalar.value == 0 ? "\\0" : "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
