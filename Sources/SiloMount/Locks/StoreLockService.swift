import Foundation
import Synchronization
import SiloClient
import SiloCore

/// Locks kept in a shared volume's lock table, in the embedded store or on a server, so that a lock
/// taken through one mount holds against every other, on this machine or another.
///
/// The mount is one holder, named at random. What it holds is leased: a thread of its own renews the
/// lease every third of it, and a holder that stops (its process killed, its machine cut off) loses
/// its locks when the lease runs out, so a waiter elsewhere gets them within the lease. A blocking
/// request asks again after 10 ms, then after twice as long each time, up to a tenth of a second
/// between asks (a lock handed from holder to holder is taken soon after its release), until it gets
/// the lock or its task is cancelled (a signal to the waiting program: FUSE INTERRUPT).
///
/// Fencing: it remembers what it was granted and under which holder name, and a commit of a locked
/// file carries ``fence(for:)``, so it lands only while that name's lease runs. A holder that comes
/// back after its lease lapsed is refused by the table (``SiloError/Code/leaseLapsed``); it goes on
/// under a new name, while commits under the locks it lost keep failing until their owners let go.
public final class StoreLockService: LockService {
    public let service: any VolumeService
    public let volume: VolumeName
    public let leaseMilliseconds: Int64
    private let renewer: Renewer
    private let state = Shared()

    private struct State {
        var holder = StoreLockService.newHolderName()
        /// What was granted, by file, with the holder name it was granted to.
        var granted: [VolumePath: [(holder: String, lock: FileLock)]] = [:]
    }

    /// The state the renewing thread shares with the service.
    private final class Shared: Sendable {
        let mutex = Mutex(State())

        func withLock<T>(_ body: (inout State) -> T) -> T { mutex.withLock { body(&$0) } }

        /// Goes on under a new name after the table said `lapsed`'s lease ran out (once, however
        /// many calls heard it).
        func rename(from lapsed: String) {
            withLock { if $0.holder == lapsed { $0.holder = StoreLockService.newHolderName() } }
        }
    }

    /// The name this mount holds locks under now.
    public var holder: String { state.withLock { $0.holder } }

    /// The lease (`SILO_LOCK_LEASE_SECONDS`, default 10): how long a killed mount's locks outlive it.
    public static var defaultLeaseMilliseconds: Int64 {
        guard let text = ProcessInfo.processInfo.environment["SILO_LOCK_LEASE_SECONDS"], let seconds = Double(text), seconds >= 0.5, seconds <= 3600
        else { return 10_000 }
        return Int64(seconds * 1000)
    }

    public init(service: any VolumeService, volume: VolumeName, leaseMilliseconds: Int64 = StoreLockService.defaultLeaseMilliseconds) {
        self.service = service
        self.volume = volume
        self.leaseMilliseconds = leaseMilliseconds
        let state = self.state
        renewer = Renewer(every: leaseMilliseconds / 3) {
            let holder = state.withLock { $0.holder }
            do {
                _ = try await service.locks(LockCall(.renew, holder: holder, leaseMilliseconds: leaseMilliseconds), in: volume)
            } catch let error as SiloError where error.code == .leaseLapsed {
                state.rename(from: holder)
            } catch {
                return  // the next turn tries again, within the lease
            }
        }
    }

    deinit { renewer.stop() }

    /// Renews the lease from a thread of its own (the renewal's task runs there too), so that a busy
    /// shared pool cannot make a live mount's lease lapse, which fencing would make its writes pay for.
    private final class Renewer: @unchecked Sendable {
        private let condition = NSCondition()
        private var stopped = false

        init(every milliseconds: Int64, _ renew: @escaping @Sendable () async -> Void) {
            let thread = Thread { [self] in
                while wait(milliseconds) {
                    let executor = RequestExecutor()
                    Task(executorPreference: executor) {
                        await renew()
                        executor.finish {}
                    }
                    executor.runUntilFinished()
                }
            }
            thread.name = "silo-lease"
            thread.start()
        }

        /// Waits `milliseconds`, or until stopped; false once stopped.
        private func wait(_ milliseconds: Int64) -> Bool {
            condition.lock()
            defer { condition.unlock() }
            let deadline = Date(timeIntervalSinceNow: Double(milliseconds) / 1000)
            while !stopped && condition.wait(until: deadline) {}
            return !stopped
        }

        func stop() {
            condition.lock()
            stopped = true
            condition.signal()
            condition.unlock()
        }
    }

    private static func newHolderName() -> String { "mount-" + UUID().uuidString.lowercased() }

    /// A call under the current name; one refused because the name's lease lapsed is made again under
    /// a new name.
    private func call(_ action: LockCall.Action, _ lock: FileLock? = nil, on file: VolumePath? = nil) async throws -> (FileLock?, holder: String) {
        func send(as holder: String) async throws -> (FileLock?, holder: String) {
            (try await service.locks(LockCall(action, holder: holder, path: file, lock: lock, leaseMilliseconds: leaseMilliseconds), in: volume), holder)
        }
        let holder = self.holder
        do {
            return try await send(as: holder)
        } catch let error as SiloError where error.code == .leaseLapsed {
            state.rename(from: holder)
            return try await send(as: self.holder)
        }
    }

    public func conflicting(_ lock: FileLock, on file: VolumePath) async throws -> FileLock? {
        try await call(.test, lock, on: file).0
    }

    public func lock(_ lock: FileLock, on file: VolumePath, wait: Bool) async throws {
        var pause = 10
        while true {
            let (blocking, holder) = try await call(.take, lock, on: file)
            guard let blocking else {
                state.withLock { state in
                    state.granted[file] = Self.removing(owner: lock.owner, lock.start, lock.end, from: state.granted[file] ?? []) + [(holder, lock)]
                }
                return
            }
            guard wait else {
                throw SiloError(.locked, "\(file) is locked by another owner (process \(blocking.pid)); try again once it is released")
            }
            try await Task.sleep(for: .milliseconds(pause))
            pause = min(pause * 2, 100)
        }
    }

    public func unlock(owner: UInt64, start: UInt64, end: UInt64, on file: VolumePath) async throws {
        // Forgotten first: a release that fails leaves the row to its lease, not a fence on this mount.
        state.withLock { state in
            let kept = Self.removing(owner: owner, start, end, from: state.granted[file] ?? [])
            state.granted[file] = kept.isEmpty ? nil : kept
        }
        _ = try await call(.release, FileLock(kind: .exclusive, start: start, end: end, owner: owner), on: file)
    }

    /// `grants` without what `owner` held of `start...end`, each part kept under the name it was
    /// granted to.
    private static func removing(
        owner: UInt64, _ start: UInt64, _ end: UInt64, from grants: [(holder: String, lock: FileLock)]
    ) -> [(holder: String, lock: FileLock)] {
        Dictionary(grouping: grants, by: \.holder).flatMap { holder, grants in
            FileLock.removing(owner: owner, start, end, from: grants.map(\.lock)).map { (holder, $0) }
        }
    }

    /// While a lock on `file` is held, its content commits under the lease it was granted under: a
    /// lapsed name's if any of its locks was granted to one (such a commit fails), else the current one.
    public func fence(for file: VolumePath) -> Precondition? {
        state.withLock { state in
            guard let grants = state.granted[file] else { return nil }
            let holder = grants.first(where: { $0.holder != state.holder })?.holder ?? state.holder
            return .leaseOf(holder)
        }
    }

    /// Stops renewing and releases everything this mount holds (at unmount).
    public func close() async {
        renewer.stop()
        _ = try? await call(.releaseAll)
        state.withLock { $0.granted.removeAll() }
    }
}
