import Foundation
import SiloCore
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// Runs the volume file system's async calls from plain threads that block until their answer is
/// ready: FUSE request threads, timers, the control socket's.
public enum Bridge {
    /// Runs `body` on this thread and waits for it; a ``SiloError`` becomes the errno a program sees.
    ///
    /// For FUSE requests: the call's task prefers an executor that queues its jobs for this thread,
    /// which runs them while it waits. A call answered from memory (a cached lookup, most attribute
    /// requests) then costs one task and no thread hop; a call that waits for the store suspends, and
    /// the store's answer resumes it here. Child tasks inherit the preference and so run here too, one
    /// after another; work that must outlive the call or run in parallel states its own executor.
    static func wait<T>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let executor = RequestExecutor()
        let result = Outcome<T>()
        Task(executorPreference: executor) {
            let value: Result<T, any Error>
            do { value = .success(try await body()) } catch { value = .failure(error) }
            executor.finish { result.value = value }
        }
        executor.runUntilFinished()
        do {
            return try result.value!.get()
        } catch let error as SiloError {
            throw FUSEError(Errno.of(error))
        }
    }

    /// Runs `body` on the shared pool (its task groups in parallel) and waits for it, passing its
    /// errors on as they are: for commits and reloads asked for by timers and the control socket.
    public static func run<T>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let result = Outcome<T>()
        Task {
            do { result.value = .success(try await body()) } catch { result.value = .failure(error) }
            done.signal()
        }
        done.wait()
        return try result.value!.get()
    }

    final class Outcome<T>: @unchecked Sendable { var value: Result<T, any Error>? }
}

/// An executor whose jobs run on the one thread that waits in ``runUntilFinished()``.
final class RequestExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var finished = false

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Records the task's end (`body` stores its result) and wakes the waiting thread.
    func finish(_ body: () -> Void) {
        condition.lock()
        body()
        finished = true
        condition.signal()
        condition.unlock()
    }

    /// Runs queued jobs on this thread until the task has finished.
    func runUntilFinished() {
        while true {
            condition.lock()
            while jobs.isEmpty && !finished { condition.wait() }
            guard !jobs.isEmpty else {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// The errno a program sees for each Silo error: one table for every mount.
enum Errno {
    static func of(_ error: SiloError) -> Int32 {
        if let local = error.underlying as? LocalFileError { return local.errno }
        switch error.code {
        case .pathNotFound, .volumeNotFound, .versionNotFound: return ENOENT
        case .pathExists: return EEXIST
        case .notADirectory: return ENOTDIR
        case .isADirectory: return EISDIR
        case .directoryNotEmpty: return ENOTEMPTY
        case .invalidArgument, .invalidPath, .invalidName: return EINVAL
        case .readOnly: return EROFS
        case .locked: return EAGAIN
        case .leaseLapsed: return ENOLCK
        case .notPermitted: return EPERM
        case .noSpace: return ENOSPC
        case .unauthorized, .forbidden: return EACCES
        default: return EIO
        }
    }
}
