import Foundation
import SiloClient
import SiloCore

/// Locks kept in a shared volume's lock table, in the embedded store or on a server, so that a lock
/// taken through one mount holds against every other, on this machine or another.
///
/// The mount is one holder, named at random. What it holds is leased: a task renews the lease every
/// third of it, and a holder that stops (its process killed, its machine cut off) loses its locks
/// when the lease runs out, so a waiter elsewhere gets them within the lease. A blocking request asks
/// again after 20 ms, then after twice as long each time, up to half a second between asks, until it
/// gets the lock or its task is cancelled (a signal to the waiting program: FUSE INTERRUPT).
public final class StoreLockService: LockService {
    public let service: any VolumeService
    public let volume: VolumeName
    public let holder: String
    public let leaseMilliseconds: Int64
    private let renewer: Task<Void, Never>

    /// The lease (`SILO_LOCK_LEASE_SECONDS`, default 10): how long a killed mount's locks outlive it.
    public static var defaultLeaseMilliseconds: Int64 {
        guard let text = ProcessInfo.processInfo.environment["SILO_LOCK_LEASE_SECONDS"], let seconds = Double(text), seconds >= 0.5, seconds <= 3600
        else { return 10_000 }
        return Int64(seconds * 1000)
    }

    public init(service: any VolumeService, volume: VolumeName, leaseMilliseconds: Int64 = StoreLockService.defaultLeaseMilliseconds) {
        self.service = service
        self.volume = volume
        self.holder = "mount-" + UUID().uuidString.lowercased()
        self.leaseMilliseconds = leaseMilliseconds
        let renewal = LockCall(.renew, holder: holder, leaseMilliseconds: leaseMilliseconds)
        renewer = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(leaseMilliseconds / 3))
                _ = try? await service.locks(renewal, in: volume)
            }
        }
    }

    deinit { renewer.cancel() }

    private func call(_ action: LockCall.Action, _ lock: FileLock? = nil, on file: VolumePath? = nil) async throws -> FileLock? {
        try await service.locks(LockCall(action, holder: holder, path: file, lock: lock, leaseMilliseconds: leaseMilliseconds), in: volume)
    }

    public func conflicting(_ lock: FileLock, on file: VolumePath) async throws -> FileLock? {
        try await call(.test, lock, on: file)
    }

    public func lock(_ lock: FileLock, on file: VolumePath, wait: Bool) async throws {
        var pause = 20
        while let holder = try await call(.take, lock, on: file) {
            guard wait else {
                throw SiloError(.locked, "\(file) is locked by another owner (process \(holder.pid)); try again once it is released")
            }
            try await Task.sleep(for: .milliseconds(pause))
            pause = min(pause * 2, 500)
        }
    }

    public func unlock(owner: UInt64, start: UInt64, end: UInt64, on file: VolumePath) async throws {
        _ = try await call(.release, FileLock(kind: .exclusive, start: start, end: end, owner: owner), on: file)
    }

    /// Stops renewing and releases everything this mount holds (at unmount).
    public func close() async {
        renewer.cancel()
        _ = try? await call(.releaseAll)
    }
}
