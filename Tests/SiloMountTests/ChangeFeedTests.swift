import Foundation
import SiloCore
import SiloMount
import SiloTesting
import Testing

/// The feed a shared volume's mounts will follow: others' commits arrive in order, each with what it
/// changed, embedded and through a server alike.
@Suite(.timeLimit(.minutes(1))) struct ChangeFeedTests {
    @Test(arguments: StoreSetup.all) func commitsArriveInOrderWithWhatTheyChanged(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let volume = try VolumeName("v")
            _ = try await fixture.service.createVolume(volume)
            try await fixture.service.put(["a": "1"], in: volume)
            let feed = PollingChangeFeed(service: fixture.service, interval: .milliseconds(20))
            var updates = feed.updates(of: volume, after: Version(1)).makeAsyncIterator()
            let writer = try await fixture.reopen(author: "writer")
            try await writer.put(["b": "2"], in: volume)
            let first = try #require(try await updates.next())
            #expect(first.version == Version(2))
            #expect(first.changes.map(\.path.rawValue) == ["b"])
            try await writer.put(["a": "3", "c/d": "4"], in: volume)
            let second = try #require(try await updates.next())
            #expect(second.version == Version(3))
            #expect(Set(second.changes.map(\.path.rawValue)).isSuperset(of: ["a", "c/d"]))
        }
    }
}
