/// The query string of an API request, read the way the API defines it: `name=value` pairs joined by
/// `&`, values percent-encoded UTF-8 (`+` is a space). Values are decoded here rather than by a
/// router, so bytes that are not UTF-8 are refused instead of turning into replacement characters.
public struct QueryString: Sendable {
    public let text: Substring

    public init(_ text: some StringProtocol) {
        self.text = Substring(text)
    }

    /// The first value of parameter `name`, decoded; nil when it is absent; an error when it is not
    /// percent-encoded UTF-8.
    public func value(_ name: String) throws(QueryValueError) -> String? {
        for pair in text.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            let key = pair[..<(equals ?? pair.endIndex)]
            guard key.elementsEqual(name.utf8) else { continue }
            let encoded = equals.map { pair[pair.index(after: $0)...] } ?? pair[pair.endIndex...]
            guard let value = Self.decode(encoded) else { throw QueryValueError(name: name) }
            return value
        }
        return nil
    }

    static func decode(_ encoded: Substring.UTF8View.SubSequence) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(encoded.count)
        var iterator = encoded.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// A query parameter whose value is not percent-encoded UTF-8.
public struct QueryValueError: Error, Sendable {
    public var name: String
}
