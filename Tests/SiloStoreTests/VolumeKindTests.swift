import Foundation
import SiloClient
import SiloCore
import SiloStore
import SiloTesting
import Testing

/// Volume kinds in the store, and the `require` change shared mounts commit under.
@Suite(.timeLimit(.minutes(5))) struct VolumeKindTests {
    @Test(arguments: StoreSetup.all)
    func aVolumeKeepsItsKindAndRequireChecksWithoutChanging(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            let shared = try VolumeName("cache")
            _ = try await service.createVolume(shared, kind: .shared)
            _ = try await service.createVolume(try VolumeName("plain"))
            #expect(try await service.volume(shared).kind == .shared)
            #expect(try await service.listVolumes().map(\.kind) == [.shared, .snapshot])

            try await service.put(["a": "x"], in: shared)
            let a = try VolumePath("a")
            let options = CommitOptions(author: "t")
            // `require` passes or fails the whole commit and changes nothing itself.
            _ = try await service.commit(Changeset([.require(a, .present), .require(try VolumePath("b"), .absent)]), to: shared, options: options)
            let failed = await #expect(throws: SiloError.self) {
                _ = try await service.commit(
                    Changeset([.require(a, .absent), .put(try VolumePath("c"), FilePut(content: .inline([1]), size: 1, mtimeNanoseconds: 0))]),
                    to: shared, options: options)
            }
            #expect(failed?.code == .conflict)
            #expect(try await service.entry(at: try VolumePath("c"), in: shared, version: nil) == nil)
            let missing = await #expect(throws: SiloError.self) {
                _ = try await service.commit(Changeset([.require(try VolumePath("b"), .present)]), to: shared, options: options)
            }
            #expect(missing?.code == .conflict)
        }
    }
}
