import Foundation
import Logging
import SiloClient
import SiloCore
import SiloStore
import SiloTesting
import Testing

/// A shared volume's lock table: locks of different holders conflict as the kernel's do, flock and
/// fcntl locks never meet, and a holder that stops renewing loses its locks when its lease runs out.
@Suite(.timeLimit(.minutes(5))) struct LockTableTests {
    let volume = try! VolumeName("cache")
    let file = try! VolumePath("db.lock")

    func exclusive(_ owner: UInt64, _ start: UInt64 = 0, _ end: UInt64 = .max, flock: Bool = false) -> FileLock {
        FileLock(kind: .exclusive, start: start, end: end, owner: owner, pid: UInt32(owner), isFlock: flock)
    }

    @Test(arguments: StoreSetup.all)
    func holdersConflictAsProcessesDo(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(volume, kind: .shared)
            func call(_ action: LockCall.Action, _ holder: String, _ lock: FileLock?) async throws -> FileLock? {
                try await service.locks(LockCall(action, holder: holder, path: file, lock: lock), in: volume)
            }
            #expect(try await call(.take, "a", exclusive(1)) == nil)
            // Another mount's owner, even with the same kernel owner number, is in the way.
            #expect(try await call(.take, "b", exclusive(1))?.pid == 1)
            #expect(try await call(.test, "b", FileLock(kind: .shared, owner: 7))?.owner == 1)
            // The same owner takes again (a downgrade to shared lets other readers in).
            #expect(try await call(.take, "a", FileLock(kind: .shared, owner: 1)) == nil)
            #expect(try await call(.take, "b", FileLock(kind: .shared, owner: 2)) == nil)
            // A flock lock never meets an fcntl lock of the same file.
            #expect(try await call(.take, "c", exclusive(3, flock: true)) == nil)
            // Byte ranges: an unlock in the middle splits a lock; the freed bytes can be taken.
            #expect(try await call(.release, "a", exclusive(1)) == nil)
            #expect(try await call(.release, "b", exclusive(2)) == nil)
            #expect(try await call(.take, "a", exclusive(1, 0, 99)) == nil)
            #expect(try await call(.release, "a", exclusive(1, 10, 19)) == nil)
            #expect(try await call(.take, "b", exclusive(2, 10, 19)) == nil)
            #expect(try await call(.take, "b", exclusive(2, 20, 20))?.owner == 1)
            // release-all drops every lock of a holder.
            #expect(try await service.locks(LockCall(.releaseAll, holder: "a"), in: volume) == nil)
            #expect(try await call(.take, "b", exclusive(2, 0, 99)) == nil)

            // Snapshot volumes have no lock table; bad calls are refused with a clear error.
            _ = try await service.createVolume(try VolumeName("plain"))
            let snapshot = await #expect(throws: SiloError.self) {
                _ = try await service.locks(LockCall(.take, holder: "a", path: file, lock: exclusive(1)), in: try VolumeName("plain"))
            }
            #expect(snapshot?.message.contains("snapshot volume") == true)
            await #expect(throws: SiloError.self) { _ = try await call(.take, "", exclusive(1)) }
            await #expect(throws: SiloError.self) { _ = try await call(.take, "a", exclusive(1, 5, 4)) }
            await #expect(throws: SiloError.self) {
                _ = try await service.locks(LockCall(.take, holder: "a", path: file, lock: exclusive(1), leaseMilliseconds: 0), in: volume)
            }
        }
    }

    /// The embedded store's metadata, with the shared volume made, for calls at chosen times.
    func sharedVolume(in fixture: StoreFixture) async throws -> any MetadataStore {
        let store = try #require((fixture.service as? EmbeddedVolumeService)?.store.metadata)
        _ = try await fixture.service.createVolume(volume, kind: .shared)
        return store
    }

    /// Holder "a" (owner 1) or "b" (owner 2) takes the whole file, with a 10 s lease, at `now` ms.
    func take(_ holder: String, at now: Int64, in store: any MetadataStore) async throws -> FileLock? {
        try await store.locks(
            LockCall(.take, holder: holder, path: file, lock: exclusive(holder == "a" ? 1 : 2), leaseMilliseconds: 10_000),
            in: volume, workspace: EmbeddedVolumeService.workspace, now: now)
    }

    @Test func aHolderThatStopsRenewingLosesItsLocksWhenTheLeaseRunsOut() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let store = try await sharedVolume(in: fixture)
            let workspace = EmbeddedVolumeService.workspace
            func take(_ holder: String, at now: Int64) async throws -> FileLock? {
                try await self.take(holder, at: now, in: store)
            }
            #expect(try await take("a", at: 1_000) == nil)
            #expect(try await take("b", at: 10_999) != nil)
            // A renewal at 9 s holds it to 19 s.
            _ = try await store.locks(LockCall(.renew, holder: "a", leaseMilliseconds: 10_000), in: volume, workspace: workspace, now: 9_000)
            #expect(try await take("b", at: 18_999) != nil)
            #expect(try await take("b", at: 19_001) == nil)
            // A renewal after the lease ran out brings nothing back, and the name takes nothing again.
            let renewal = await #expect(throws: SiloError.self) {
                _ = try await store.locks(LockCall(.renew, holder: "a", leaseMilliseconds: 10_000), in: volume, workspace: workspace, now: 19_500)
            }
            #expect(renewal?.code == .leaseLapsed)
            let again = await #expect(throws: SiloError.self) { _ = try await take("a", at: 19_600) }
            #expect(again?.code == .leaseLapsed)
            #expect(try await take("b", at: 19_700) == nil)
        }
    }

    /// Fencing: a commit that requires its writer's lease lands while the lease runs (a lock released
    /// on time changes nothing); after the lease lapsed it fails whole, whether or not another holder
    /// took the lock since, and a renewal does not bring the lease back.
    @Test func aCommitUnderALapsedLockIsRefusedAndChangesNothing() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let store = try await sharedVolume(in: fixture)
            let workspace = EmbeddedVolumeService.workspace
            func take(_ holder: String, at now: Int64) async throws -> FileLock? {
                try await self.take(holder, at: now, in: store)
            }
            func write(_ text: String, as holder: String, at now: Int64) async throws {
                let changes = Changeset([
                    .require(file, .leaseOf(holder)),
                    .put(file, FilePut(content: .inline(Array(text.utf8)), size: Int64(text.utf8.count), mtimeNanoseconds: now * 1_000_000)),
                ])
                _ = try await store.commit(changes, to: volume, workspace: workspace, options: CommitOptions(author: holder), now: now) { _ in [:] }
            }
            func content() async throws -> String? { try await fixture.service.text(file.rawValue, in: volume) }
            #expect(try await take("a", at: 1_000) == nil)
            try await write("a, under its lock", as: "a", at: 5_000)
            _ = try await store.locks(LockCall(.release, holder: "a", path: file, lock: exclusive(1), leaseMilliseconds: 10_000), in: volume, workspace: workspace, now: 5_100)
            try await write("a, under its lock", as: "a", at: 5_200)
            // The release renewed the lease to 15.1 s. Lapsed, nobody else took the lock yet: refused
            // all the same.
            let lapsed = await #expect(throws: SiloError.self) { try await write("a, lapsed", as: "a", at: 15_101) }
            #expect(lapsed?.code == .conflict)
            #expect(lapsed?.message.contains("lapsed") == true)
            #expect(try await content() == "a, under its lock")
            // The next holder writes; the first one's late write (after a renewal) never lands.
            #expect(try await take("b", at: 16_000) == nil)
            try await write("b, the next holder", as: "b", at: 16_500)
            await #expect(throws: SiloError.self) {
                _ = try await store.locks(LockCall(.renew, holder: "a", leaseMilliseconds: 10_000), in: volume, workspace: workspace, now: 17_000)
            }
            await #expect(throws: SiloError.self) { try await write("a, late", as: "a", at: 17_100) }
            #expect(try await content() == "b, the next holder")
            #expect(try await fixture.service.volume(volume).latestVersion == Version(3))
        }
    }

    /// The fence's precondition travels through the server as through the embedded store.
    @Test(arguments: StoreSetup.all)
    func aCommitRequiringALockLandsOnlyForItsHolder(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            _ = try await service.createVolume(volume, kind: .shared)
            #expect(try await service.locks(LockCall(.take, holder: "a", path: file, lock: exclusive(1)), in: volume) == nil)
            let put = Change.put(file, FilePut(content: .inline([1, 2]), size: 2, mtimeNanoseconds: 0))
            _ = try await service.commit(Changeset([.require(file, .leaseOf("a")), put]), to: volume, options: CommitOptions(author: "a"))
            let other = await #expect(throws: SiloError.self) {
                _ = try await service.commit(Changeset([.require(file, .leaseOf("b")), put]), to: volume, options: CommitOptions(author: "b"))
            }
            #expect(other?.code == .conflict)
            #expect(other?.paths == ["/db.lock"])
            #expect(try await service.volume(volume).latestVersion == Version(1))
        }
    }
}
