import Foundation
import SiloCore

/// The whole-file copies a reader is assembling from the blocks it reads, by content key.
///
/// Blocks are written into copies in the background, so a read does not wait for the copy's disk
/// writes; at most ``inFlight`` blocks wait their turn, after which a read waits too (the memory
/// they hold stays bounded).
final class WholeFileCopies: @unchecked Sendable {
    static let inFlight = 8
    private let writes = DispatchQueue(label: "silo.whole-file-copies")
    private let room = DispatchSemaphore(value: WholeFileCopies.inFlight)
    private let lock = NSLock()
    private var assembling: [String: WholeFileAssembler] = [:]
    /// Keys whose copy is in the cache (or cannot be made): nothing more to assemble.
    private var done: Set<String> = []

    /// Writes `block` into `assembler`'s copy in the background.
    func add(_ block: [UInt8], at index: Int, to assembler: WholeFileAssembler) {
        room.wait()
        writes.async { [room] in
            assembler.add(index, block)
            room.signal()
        }
    }

    /// Waits for the blocks handed over so far to be written: a copy whose last block was read is
    /// then stored, and an open finds it.
    func settle() {
        writes.sync {}
    }

    /// The assembler for a file's copy, made on first use; nil once the copy is stored.
    func assembler(for hashes: [BlockHash], size: Int64, blockSize: Int, in cache: ContentCache) -> WholeFileAssembler? {
        let key = ContentCache.key(of: hashes, size: size, blockSize: blockSize)
        return lock.withLock {
            if done.contains(key) { return nil }
            if let assembler = assembling[key] {
                guard assembler.completed == nil else {
                    assembling[key] = nil
                    done.insert(key)
                    return nil
                }
                return assembler
            }
            guard cache.wholeFile(key, size: size) == nil,
                let assembler = cache.assembler(key: key, size: size, blockSize: blockSize, blockCount: hashes.count)
            else {
                done.insert(key)
                return nil
            }
            assembling[key] = assembler
            return assembler
        }
    }
}
