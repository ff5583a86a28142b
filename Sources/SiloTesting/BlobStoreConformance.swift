import Foundation
import SiloCore
import SiloStore

/// What every ``BlobStore`` adapter must do, as one routine a test runs against each adapter (the
/// local directory now; S3 next): the rules the store above it relies on. It reports the first rule
/// an adapter breaks as an error naming it.
public enum BlobStoreConformance {
    public struct Violation: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs every rule against `store`, whose namespaces `a` and `b` must start empty. `damage`
    /// changes the bytes the adapter keeps for a block (as a failing disk would), where it can.
    public static func check(_ store: any BlobStore, damage: ((BlockHash, String) throws -> Void)? = nil) async throws {
        func require(_ condition: Bool, _ rule: String) throws {
            if !condition { throw Violation(description: "BlobStore rule broken: \(rule)") }
        }
        let block = Block(bytes: pseudoRandomBytes(count: 70_000, seed: 501))
        let other = Block(bytes: pseudoRandomBytes(count: 1, seed: 502))
        let empty = Block(bytes: [])

        try require(try await store.length(of: block.hash, namespace: "a") == nil, "an empty namespace holds nothing")
        try require(try await store.missing([block.hash, other.hash], namespace: "a") == [block.hash, other.hash], "missing lists what is not held, in order")

        try await store.put(block, namespace: "a")
        try await store.put(empty, namespace: "a")
        try require(try await store.length(of: block.hash, namespace: "a") == block.bytes.count, "length is the stored length")
        try require(try await store.length(of: empty.hash, namespace: "a") == 0, "an empty block is held, with length 0")
        try require(try await store.get(block.hash, namespace: "a").bytes == block.bytes, "get returns the bytes put")
        try require(try await store.missing([block.hash, other.hash], namespace: "a") == [other.hash], "missing leaves out what is held")

        try require(try await store.length(of: block.hash, namespace: "b") == nil, "namespaces are apart: another holds nothing of it")
        do {
            _ = try await store.get(block.hash, namespace: "b")
            try require(false, "a get from another namespace fails")
        } catch let error as SiloError {
            try require(error.code == .missingBlock, "a block not held reads as missing_block, not \(error.code)")
        }

        try await store.put(block, namespace: "a")
        try require(try await store.get(block.hash, namespace: "a").bytes == block.bytes, "putting a held block again is harmless")

        if let damage {
            try damage(block.hash, "a")
            do {
                _ = try await store.get(block.hash, namespace: "a")
                try require(false, "damaged bytes are an error, never data")
            } catch let error as SiloError {
                try require(error.code == .corruptBlock, "damage reads as corrupt_block, not \(error.code)")
            }
            try await store.put(block, namespace: "a")
            try require((try? await store.get(block.hash, namespace: "a")) == nil, "a plain put leaves a held block as it is")
            try await store.put(block, namespace: "a", replacing: true)
            try require(try await store.get(block.hash, namespace: "a").bytes == block.bytes, "a replacing put repairs a damaged block")
        }

        try await store.delete(block.hash, namespace: "a")
        try await store.delete(block.hash, namespace: "a")
        try require(try await store.length(of: block.hash, namespace: "a") == nil, "a deleted block is gone; deleting twice is harmless")
        try require(try await store.length(of: empty.hash, namespace: "a") == 0, "delete removes only its block")
    }
}
