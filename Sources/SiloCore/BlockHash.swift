/// The SHA-256 of a block's bytes: the name a block is stored and fetched under.
public struct BlockHash: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public static let byteCount = 32

    // Four words rather than an array: hashes are dictionary keys on hot paths.
    public let w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    public init<Bytes: Collection<UInt8>>(bytes: Bytes) throws(SiloError) {
        guard bytes.count == Self.byteCount else {
            throw SiloError(.invalidArgument, "a block hash has 32 bytes, not \(bytes.count)")
        }
        var words: [UInt64] = [0, 0, 0, 0]
        for (index, byte) in bytes.enumerated() {
            words[index / 8] = words[index / 8] << 8 | UInt64(byte)
        }
        (w0, w1, w2, w3) = (words[0], words[1], words[2], words[3])
    }

    public init(hex: String) throws(SiloError) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 64 else {
            throw SiloError(.invalidArgument, "a block hash is 64 hexadecimal digits, not '\(hex.escapedForDisplay)'")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var index = 0
        while index < 64 {
            guard let high = Self.nibble(utf8[index]), let low = Self.nibble(utf8[index + 1]) else {
                throw SiloError(.invalidArgument, "a block hash is 64 hexadecimal digits, not '\(hex.escapedForDisplay)'")
            }
            bytes.append(high << 4 | low)
            index += 2
        }
        try self.init(bytes: bytes)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for word in [w0, w1, w2, w3] {
            for shift in stride(from: 56, through: 0, by: -8) {
                out.append(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
            }
        }
        return out
    }

    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { hex }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.w0, lhs.w1, lhs.w2, lhs.w3) < (rhs.w0, rhs.w1, rhs.w2, rhs.w3)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        try self.init(hex: container.decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}

extension BlockHash {
    /// Packs hashes back to back, 32 bytes each, as the metadata store keeps a file's block list.
    public static func pack(_ hashes: [BlockHash]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(hashes.count * byteCount)
        for hash in hashes { out += hash.bytes }
        return out
    }

    public static func unpack<Bytes: Collection<UInt8>>(_ packed: Bytes) throws(SiloError) -> [BlockHash] where Bytes.Index == Int {
        guard packed.count % byteCount == 0 else {
            throw SiloError(.storage, "a stored block list is \(packed.count) bytes, not a multiple of 32")
        }
        var result: [BlockHash] = []
        result.reserveCapacity(packed.count / byteCount)
        var start = packed.startIndex
        while start < packed.endIndex {
            result.append(try BlockHash(bytes: packed[start..<start + byteCount]))
            start += byteCount
        }
        return result
    }
}
