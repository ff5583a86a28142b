import SiloClient
import SiloCore

/// What others committed to a volume since a version: the new version and the paths it changed.
public struct VolumeUpdate: Sendable, Equatable {
    public var version: Version
    public var changes: [PathChange]

    public init(version: Version, changes: [PathChange]) {
        self.version = version
        self.changes = changes
    }
}

/// A feed of the commits others make to a volume: the seam through which a shared volume's mounts
/// learn what to show next (close-to-open consistency needs a mount to see another's close within
/// about a second) without a reload asked for by the user. Snapshot mounts use none: they move only
/// when reloaded.
public protocol ChangeFeed: Sendable {
    /// The updates to `volume` after `version`, in order, each as soon as the feed learns of it,
    /// until the consuming task is cancelled or the feed fails.
    func updates(of volume: VolumeName, after version: Version) -> AsyncThrowingStream<VolumeUpdate, any Error>
}

/// A feed that asks the store for the volume's latest version every `interval` (one small request,
/// answered from an index), and for what changed when it moved: for any ``VolumeService``, embedded or
/// remote. A server that pushes its commits can replace it behind the same protocol.
public struct PollingChangeFeed: ChangeFeed {
    public let service: any VolumeService
    public let interval: Duration

    public init(service: any VolumeService, interval: Duration = .seconds(1)) {
        self.service = service
        self.interval = interval
    }

    public func updates(of volume: VolumeName, after version: Version) -> AsyncThrowingStream<VolumeUpdate, any Error> {
        let (stream, continuation) = AsyncThrowingStream<VolumeUpdate, any Error>.makeStream()
        let task = Task { [service, interval] in
            var seen = version
            do {
                while !Task.isCancelled {
                    let latest = try await service.volume(volume).latestVersion
                    if latest > seen {
                        let changes = try await service.changes(in: volume, from: seen, to: latest)
                        continuation.yield(VolumeUpdate(version: latest, changes: changes))
                        seen = latest
                    }
                    try await Task.sleep(for: interval)
                }
                continuation.finish()
            } catch is CancellationError {
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}
