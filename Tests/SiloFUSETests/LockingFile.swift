import Foundation
import SiloCore
import SiloFUSE
import SiloMount
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One file, `f` (node 2), whose locks the file system keeps itself (in a ``LocalLockTable``), as a
/// shared volume will keep them across machines: lock waits are answered later and end when
/// interrupted.
final class LockingFile: FUSEFileSystem, Sendable {
    let locks = LocalLockTable()
    private let handles = Mutex<UInt64>(0)
    private static let file = try! VolumePath("f")

    var waiting: Int { locks.waiting }

    func lookup(parent: UInt64, name: String) throws -> FUSEEntry {
        guard parent == 1, name == "f" else { throw FUSEError.notFound }
        return FUSEEntry(attributes: try attributes(of: 2), entryTimeout: 1, attributeTimeout: 1)
    }

    func attributes(of node: UInt64) throws -> FUSEAttributes {
        switch node {
        case 1: FUSEAttributes(node: 1, size: 0, mode: S_IFDIR | 0o755, mtimeNanoseconds: 0)
        case 2: FUSEAttributes(node: 2, size: 5, mode: S_IFREG | 0o644, mtimeNanoseconds: 0)
        default: throw FUSEError.notFound
        }
    }

    func listDirectory(_ node: UInt64) throws -> [FUSEDirectoryEntry] {
        guard node == 1 else { throw FUSEError.notADirectory }
        return [FUSEDirectoryEntry(node: 1, name: ".", type: S_IFDIR), FUSEDirectoryEntry(node: 2, name: "f", type: S_IFREG)]
    }

    func open(_ node: UInt64, flags: Int32) throws -> FUSEOpened {
        guard node == 2 else { throw FUSEError.isADirectory }
        return FUSEOpened(handle: handles.withLock { $0 += 1; return $0 }, keepCache: false)
    }

    func read(_ node: UInt64, handle: UInt64, offset: UInt64, size: Int) throws -> [UInt8] {
        let bytes = Array("hello".utf8)
        guard offset < UInt64(bytes.count) else { return [] }
        return Array(bytes[Int(offset)..<min(bytes.count, Int(offset) + max(0, size))])
    }

    var handlesLocks: Bool { true }

    func conflictingLock(_ node: UInt64, handle: UInt64, _ lock: FUSELock) throws -> FUSELock? {
        let asked = FileLock(lock)
        return locks.held(on: Self.file).first { $0.conflicts(with: asked) }.map(FUSELock.init)
    }

    func setLock(_ node: UInt64, handle: UInt64, _ lock: FUSELock, wait: Bool) async throws {
        if lock.kind == .unlock {
            return try await locks.unlock(owner: lock.owner, start: lock.start, end: lock.end, on: Self.file)
        }
        do {
            try await locks.lock(FileLock(lock), on: Self.file, wait: wait)
        } catch let error as SiloError where error.code == .locked {
            throw FUSEError(EAGAIN)
        }
    }
}
