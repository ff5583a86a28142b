import SiloCore

/// The single byte range of a `Range: bytes=…` header (RFC 9110, section 14.1.2).
///
/// Every number in the header comes from a client: parsing uses no arithmetic that can overflow, and
/// the range it returns always lies inside `0..<size`.
public enum ByteRange {
    /// nil when there is no header, the body is empty, or the header is not one the server understands
    /// (then the whole body is sent, as HTTP allows); throws when the range starts past the end.
    public static func resolve(_ header: String?, size: Int64) throws(RangeNotSatisfiable) -> Range<Int64>? {
        guard let header, size > 0, header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let spec = header.utf8.dropFirst("bytes=".utf8.count)
        guard let dash = spec.firstIndex(of: UInt8(ascii: "-")) else { return nil }
        let first = spec[..<dash].trimmingSpaces
        let last = spec[spec.index(after: dash)...].trimmingSpaces
        if first.isEmpty {
            // A suffix: the last N bytes, all of them when N is larger than the body.
            guard let suffix = decimal(last), suffix > 0 else { return nil }
            return (suffix >= size ? 0 : size - suffix)..<size
        }
        guard let start = decimal(first) else { return nil }
        var end = size
        if !last.isEmpty {
            guard let inclusive = decimal(last), inclusive >= start else { return nil }
            // `inclusive + 1` would overflow at Int64.max; a last byte past the end means "to the end".
            end = inclusive < size - 1 ? inclusive + 1 : size
        }
        guard start < size else {
            throw RangeNotSatisfiable(header: header, size: size)
        }
        return start..<end
    }

    /// A non-negative decimal of ASCII digits only (no sign, no spaces), or nil when it is not one or
    /// does not fit in an `Int64`.
    static func decimal(_ digits: Substring.UTF8View.SubSequence) -> Int64? {
        guard !digits.isEmpty else { return nil }
        var value: Int64 = 0
        for byte in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        return value
    }
}

extension Substring.UTF8View.SubSequence {
    fileprivate var trimmingSpaces: Self {
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return self[endIndex...]
        }
        return self[first...last]
    }
}

/// A 416 answer: the range starts at or past the end of a body of `size` bytes.
public struct RangeNotSatisfiable: Error, Sendable {
    public var header: String
    public var size: Int64
    public var error: SiloError {
        SiloError(.invalidRange, "range '\(header.prefix(80).escapedForDisplay)' starts past the end (the body is \(size) bytes)")
    }
}
