import Foundation
import SiloCore
import SiloMount
import SiloTesting
import Testing

/// The lock port of a mount: POSIX rules per byte range in ``LocalLockTable``, waits that end, and
/// two mounts of one volume that share a table seeing one lock per file.
@Suite(.timeLimit(.minutes(1))) struct LockTests {
    let file = try! VolumePath("data/f")

    func exclusive(_ start: UInt64, _ end: UInt64, owner: UInt64) -> FileLock {
        FileLock(kind: .exclusive, start: start, end: end, owner: owner, pid: UInt32(owner))
    }

    func shared(_ start: UInt64, _ end: UInt64, owner: UInt64) -> FileLock {
        FileLock(kind: .shared, start: start, end: end, owner: owner, pid: UInt32(owner))
    }

    func isLocked(_ body: () async throws -> Void) async -> Bool {
        do {
            try await body()
            return false
        } catch let error as SiloError {
            return error.code == .locked
        } catch {
            return false
        }
    }

    @Test func rangesAreSplitReplacedAndSharedAsPOSIXSays() async throws {
        let table = LocalLockTable()
        try await table.lock(exclusive(0, 99, owner: 1), on: file, wait: false)
        #expect(await isLocked { try await table.lock(shared(50, 60, owner: 2), on: file, wait: false) })
        #expect(try await table.conflicting(shared(50, 60, owner: 2), on: file)?.owner == 1)
        // Its own owner meets no conflict: a lock replaces what the owner held of those bytes.
        #expect(try await table.conflicting(shared(50, 60, owner: 1), on: file) == nil)

        // Unlocking the middle splits the lock in two.
        try await table.unlock(owner: 1, start: 40, end: 69, on: file)
        #expect(table.held(on: file).map { $0.start...$0.end } == [0...39, 70...99])
        try await table.lock(shared(50, 60, owner: 2), on: file, wait: false)

        // A downgrade to shared lets other readers in, not writers.
        try await table.lock(shared(0, 39, owner: 1), on: file, wait: false)
        try await table.lock(shared(0, 10, owner: 3), on: file, wait: false)
        #expect(await isLocked { try await table.lock(exclusive(0, 10, owner: 3), on: file, wait: false) })
        // Other files are apart.
        try await table.lock(exclusive(0, .max, owner: 3), on: try VolumePath("data/g"), wait: false)

        for owner in [1, 2, 3] as [UInt64] { try await table.unlock(owner: owner, start: 0, end: .max, on: file) }
        #expect(table.held(on: file).isEmpty)
    }

    @Test func aWaitEndsWhenTheLockGoesOrWhenCancelled() async throws {
        let table = LocalLockTable()
        try await table.lock(exclusive(0, .max, owner: 1), on: file, wait: false)
        let granted = Task { [file] in try await table.lock(FileLock(kind: .exclusive, owner: 2), on: file, wait: true) }
        while table.waiting == 0 { await Task.yield() }
        try await table.unlock(owner: 1, start: 0, end: .max, on: file)
        try await granted.value
        #expect(table.held(on: file).map(\.owner) == [2])

        let abandoned = Task { [file] in try await table.lock(FileLock(kind: .shared, owner: 3), on: file, wait: true) }
        while table.waiting == 0 { await Task.yield() }
        abandoned.cancel()
        await #expect(throws: CancellationError.self) { try await abandoned.value }
        #expect(table.waiting == 0)
        #expect(table.held(on: file).map(\.owner) == [2])
    }

    @Test func twoMountsSharingATableSeeOneLockPerFile() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let volume = try VolumeName("v")
            _ = try await fixture.service.createVolume(volume)
            try await fixture.service.put(["data/f": "hello"], in: volume)
            let table = LocalLockTable()
            func mount(_ name: String, locks: (any LockService)?) throws -> VolumeFileSystem {
                try VolumeFileSystem(
                    service: fixture.service, volume: volume, version: Version(1), scratch: fixture.directory.file(name), locks: locks)
            }
            let first = try mount("a", locks: table)
            let second = try mount("b", locks: table)
            func inode(_ fileSystem: VolumeFileSystem) async throws -> Inode {
                let directory = try await fileSystem.lookup("data", in: .root)
                return try await fileSystem.lookup("f", in: directory.inode).inode
            }
            try await first.lock(exclusive(0, .max, owner: 10), on: try await inode(first), wait: false)
            #expect(try await second.conflictingLock(shared(0, 0, owner: 20), on: try await inode(second))?.owner == 10)
            #expect(await isLocked { try await second.lock(self.shared(0, 0, owner: 20), on: try await inode(second), wait: false) })
            try await first.unlock(owner: 10, start: 0, end: .max, on: try await inode(first))
            try await second.lock(shared(0, 0, owner: 20), on: try await inode(second), wait: false)

            // A snapshot mount keeps no locks: the kernel does, and says so if asked.
            let plain = try mount("c", locks: nil)
            let error = await #expect(throws: SiloError.self) { try await plain.lock(self.shared(0, 0, owner: 30), on: try await inode(plain), wait: false) }
            #expect(error?.message.contains("kernel") == true)
        }
    }
}
