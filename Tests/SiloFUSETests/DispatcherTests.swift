import CSiloFUSE
import Foundation
import SiloFUSE
import Synchronization
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One file, `f` (node 2), whose locks the file system keeps itself, as a shared volume will keep
/// them across machines: lock waits are answered later and end when interrupted.
final class LockingFile: FUSEFileSystem, Sendable {
    private struct State {
        var held: [FUSELock] = []
        var waiters: [Int: CheckedContinuation<Void, any Error>] = [:]
        var nextWaiter = 0
        var handles: UInt64 = 0
    }

    private let state = Mutex(State())

    var waiting: Int { state.withLock { $0.waiters.count } }

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
        return FUSEOpened(handle: state.withLock { state in
            state.handles += 1
            return state.handles
        }, keepCache: false)
    }

    func read(_ node: UInt64, handle: UInt64, offset: UInt64, size: Int) throws -> [UInt8] {
        let bytes = Array("hello".utf8)
        guard offset < UInt64(bytes.count) else { return [] }
        return Array(bytes[Int(offset)..<min(bytes.count, Int(offset) + max(0, size))])
    }

    var handlesLocks: Bool { true }

    func conflictingLock(_ node: UInt64, handle: UInt64, _ lock: FUSELock) throws -> FUSELock? {
        state.withLock { state in state.held.first { $0.conflicts(with: lock) } }
    }

    func setLock(_ node: UInt64, handle: UInt64, _ lock: FUSELock, wait: Bool) async throws {
        while true {
            let taken: Bool = state.withLock { state in
                if lock.kind == .unlock {
                    state.held.removeAll { $0.owner == lock.owner }
                    for waiter in state.waiters.values { waiter.resume() }
                    state.waiters = [:]
                    return true
                }
                guard !state.held.contains(where: { $0.conflicts(with: lock) }) else { return false }
                state.held.append(lock)
                return true
            }
            if taken { return }
            guard wait else { throw FUSEError(EAGAIN) }
            try await waitForAnUnlock()
        }
    }

    /// Waits until some lock is released, or throws when the task is cancelled.
    private func waitForAnUnlock() async throws {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let cancelled = state.withLock { state in
                    if Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            state.withLock { state in state.waiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }
}

/// The dispatcher over a transport in memory: the opcode table, replies answered later, interrupts,
/// and requests no kernel would send. One request thread, so a request that held it would stall
/// every later one.
@Suite(.timeLimit(.minutes(1)), .ownThread) struct DispatcherTests {
    let transport = MemoryTransport()
    let files = LockingFile()
    let connection: FUSEConnection

    init() throws {
        connection = FUSEConnection(fileSystem: files, transport: transport)
        try connection.start(threads: 1)
    }

    /// Opens `f` and returns the kernel's handle for the open.
    func open(unique: UInt64) throws -> UInt64 {
        transport.send(FUSE_OPEN.rawValue, unique: unique, node: 2, bytes(of: fuse_open_in()))
        let reply = try #require(transport.reply(to: unique))
        #expect(reply.error == 0)
        return try #require(value(fuse_open_out.self, from: reply.payload)).fh
    }

    func lockRequest(_ type: Int32, handle: UInt64, owner: UInt64) -> [UInt8] {
        var input = fuse_lk_in()
        input.fh = handle
        input.owner = owner
        input.lk.type = UInt32(type)
        input.lk.start = 0
        input.lk.end = UInt64.max
        return bytes(of: input)
    }

    @Test func eachRequestIsAnsweredByItsOpcodesEntry() throws {
        defer { connection.stop() }
        var initIn = fuse_init_in()
        initIn.major = 7
        initIn.minor = 45
        initIn.flags = UInt32(FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS | FUSE_ASYNC_READ)
        transport.send(FUSE_INIT.rawValue, unique: 1, bytes(of: initIn))
        let initReply = try #require(transport.reply(to: 1))
        let initialized = try #require(value(fuse_init_out.self, from: initReply.payload))
        #expect(initialized.major == 7 && initialized.minor == 40)
        // The file system keeps its locks, so it asks the kernel to send them.
        #expect(initialized.flags & UInt32(FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS) == UInt32(FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS))

        transport.send(FUSE_LOOKUP.rawValue, unique: 2, Array("f".utf8) + [0])
        let found = try #require(transport.reply(to: 2))
        let entry = try #require(value(fuse_entry_out.self, from: found.payload))
        #expect(entry.nodeid == 2 && entry.attr.size == 5)
        transport.send(FUSE_LOOKUP.rawValue, unique: 3, Array("g".utf8) + [0])
        #expect(transport.reply(to: 3)?.error == -ENOENT)
        // A name without its terminating NUL, and an opcode nobody answers.
        transport.send(FUSE_LOOKUP.rawValue, unique: 4, Array("f".utf8))
        #expect(transport.reply(to: 4)?.error == -EINVAL)
        transport.send(9999, unique: 5)
        #expect(transport.reply(to: 5)?.error == -ENOSYS)

        let handle = try open(unique: 6)
        var read = fuse_read_in()
        read.fh = handle
        read.offset = 1
        read.size = 100
        transport.send(FUSE_READ.rawValue, unique: 7, node: 2, bytes(of: read))
        #expect(transport.reply(to: 7)?.payload == Array("ello".utf8))
        #expect(connection.dispatcher.counters.bytesServed == 4)
    }

    @Test func aLockWaitIsAnsweredLaterAndHoldsNoRequestThread() throws {
        defer { connection.stop() }
        let first = try open(unique: 1)
        let second = try open(unique: 2)
        transport.send(FUSE_SETLK.rawValue, unique: 3, node: 2, lockRequest(F_WRLCK, handle: first, owner: 100))
        #expect(transport.reply(to: 3)?.error == 0)
        // Owner 200 has to wait; without waiting it is told so at once.
        transport.send(FUSE_SETLK.rawValue, unique: 4, node: 2, lockRequest(F_WRLCK, handle: second, owner: 200))
        #expect(transport.reply(to: 4)?.error == -EAGAIN)
        transport.send(FUSE_SETLKW.rawValue, unique: 5, node: 2, lockRequest(F_WRLCK, handle: second, owner: 200))
        // The one request thread answers what comes next while the wait goes on.
        transport.send(FUSE_GETATTR.rawValue, unique: 6, node: 2, bytes(of: fuse_getattr_in()))
        #expect(transport.reply(to: 6)?.error == 0)
        transport.send(FUSE_GETLK.rawValue, unique: 7, node: 2, lockRequest(F_WRLCK, handle: second, owner: 200))
        let getlk = try #require(transport.reply(to: 7))
        let holder = try #require(value(fuse_lk_out.self, from: getlk.payload))
        #expect(holder.lk.type == UInt32(F_WRLCK))
        #expect(transport.replied(5) == nil)
        #expect(connection.dispatcher.pendingRequests == 1)

        transport.send(FUSE_SETLK.rawValue, unique: 8, node: 2, lockRequest(F_UNLCK, handle: first, owner: 100))
        #expect(transport.reply(to: 8)?.error == 0)
        #expect(transport.reply(to: 5)?.error == 0)
        // Now owner 200 holds it, and owner 100 finds it in the way.
        transport.send(FUSE_GETLK.rawValue, unique: 9, node: 2, lockRequest(F_RDLCK, handle: first, owner: 100))
        let after = try #require(transport.reply(to: 9))
        #expect(value(fuse_lk_out.self, from: after.payload)?.lk.type == UInt32(F_WRLCK))
        #expect(transport.answeredTwice.isEmpty)
    }

    @Test func anInterruptEndsALockWaitWithEINTRAndTakesNothing() throws {
        defer { connection.stop() }
        let first = try open(unique: 1)
        let second = try open(unique: 2)
        transport.send(FUSE_SETLK.rawValue, unique: 3, node: 2, lockRequest(F_WRLCK, handle: first, owner: 100))
        #expect(transport.reply(to: 3)?.error == 0)
        transport.send(FUSE_SETLKW.rawValue, unique: 4, node: 2, lockRequest(F_WRLCK, handle: second, owner: 200))
        var interrupt = fuse_interrupt_in()
        interrupt.unique = 4
        transport.send(FUSE_INTERRUPT.rawValue, unique: 5 | interruptBit, bytes(of: interrupt))
        #expect(transport.reply(to: 4)?.error == -EINTR)
        #expect(connection.dispatcher.pendingRequests == 0)
        // The interrupted owner holds nothing: once 100 lets go, a third owner takes it at once.
        transport.send(FUSE_SETLK.rawValue, unique: 6, node: 2, lockRequest(F_UNLCK, handle: first, owner: 100))
        #expect(transport.reply(to: 6)?.error == 0)
        transport.send(FUSE_SETLK.rawValue, unique: 7, node: 2, lockRequest(F_WRLCK, handle: first, owner: 300))
        #expect(transport.reply(to: 7)?.error == 0)
        // An interrupt is never answered itself.
        #expect(transport.replied(5 | interruptBit) == nil)
        #expect(files.waiting == 0)
    }

    @Test func anInterruptReadBeforeItsRequestStillEndsIt() throws {
        defer { connection.stop() }
        let first = try open(unique: 1)
        let second = try open(unique: 2)
        transport.send(FUSE_SETLK.rawValue, unique: 3, node: 2, lockRequest(F_WRLCK, handle: first, owner: 100))
        #expect(transport.reply(to: 3)?.error == 0)
        var interrupt = fuse_interrupt_in()
        interrupt.unique = 5
        transport.send(FUSE_INTERRUPT.rawValue, unique: 4 | interruptBit, bytes(of: interrupt))
        transport.send(FUSE_SETLKW.rawValue, unique: 5, node: 2, lockRequest(F_WRLCK, handle: second, owner: 200))
        #expect(transport.reply(to: 5)?.error == -EINTR)
    }

    @Test func stoppingAnswersEveryRequestStillWaiting() throws {
        let first = try open(unique: 1)
        let second = try open(unique: 2)
        transport.send(FUSE_SETLK.rawValue, unique: 3, node: 2, lockRequest(F_WRLCK, handle: first, owner: 100))
        #expect(transport.reply(to: 3)?.error == 0)
        transport.send(FUSE_SETLKW.rawValue, unique: 4, node: 2, lockRequest(F_WRLCK, handle: second, owner: 200))
        transport.send(FUSE_GETATTR.rawValue, unique: 5, node: 2, bytes(of: fuse_getattr_in()))
        #expect(transport.reply(to: 5)?.error == 0)
        connection.stop()
        #expect(transport.replied(4)?.error == -EINTR)
    }

    /// Every opcode with bodies of every short length and random bytes: an answer or an error, never
    /// a trap, and never two answers to one request.
    @Test func requestsNoKernelWouldSendAreAnsweredWithoutATrap() throws {
        defer { connection.stop() }
        var random = SeededBytes(seed: 11)
        var unique: UInt64 = 1
        for opcode in UInt32(0)..<64 where opcode != FUSE_DESTROY.rawValue {
            for length in [0, 1, 7, 8, 16, 24, 40, 64, 80, 100, 200, 4096] {
                transport.send(opcode, unique: unique, node: random.next() % 4, random.bytes(length))
                unique += 1
            }
        }
        // Times past what nanoseconds since 1970 can hold.
        var setattr = fuse_setattr_in()
        setattr.valid = UInt32(FATTR_MTIME)
        setattr.mtime = UInt64.max / 2
        transport.send(FUSE_SETATTR.rawValue, unique: unique, node: 2, bytes(of: setattr))
        #expect(transport.reply(to: unique)?.error == -EROFS)
        // The connection still answers.
        transport.send(FUSE_LOOKUP.rawValue, unique: unique + 1, Array("f".utf8) + [0])
        #expect(transport.reply(to: unique + 1)?.error == 0)
        #expect(transport.answeredTwice.isEmpty)
    }
}

/// Interrupts carry this bit in their own id (FUSE_INT_REQ_BIT), so they never collide with requests'.
let interruptBit: UInt64 = 1

/// A seeded generator of bytes, so a failing run can be repeated.
struct SeededBytes {
    private var state: UInt64

    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }
}
