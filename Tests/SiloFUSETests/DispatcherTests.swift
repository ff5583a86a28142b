import CSiloFUSE
import Foundation
import SiloFUSE
import Synchronization
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The dispatcher over a transport in memory: the opcode table, replies answered later, interrupts,
/// and requests no kernel would send. One request thread, so a request that held it would stall
/// every later one.
// The limit counts the wait for a thread of its own behind long process-driving tests, too.
@Suite(.timeLimit(.minutes(10)), .ownThread) struct DispatcherTests {
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

    func lockRequest(_ type: Int32, handle: UInt64, owner: UInt64, flock: Bool = false) -> [UInt8] {
        var input = fuse_lk_in()
        input.fh = handle
        input.owner = owner
        if flock { input.lk_flags = UInt32(FUSE_LK_FLOCK) }
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
        // A name longer than a directory entry may be, as ext4 answers.
        transport.send(FUSE_LOOKUP.rawValue, unique: 8, Array(String(repeating: "n", count: 256).utf8) + [0])
        #expect(transport.reply(to: 8)?.error == -ENAMETOOLONG)

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

    /// The kernel's owner of a `flock` lock is the address of the open file, which a new open may
    /// reuse while the release of the closed one is on its way: that late release must not drop the
    /// lock the new open took (two programs would hold it at once).
    @Test func aLateReleaseOfAClosedFileLeavesTheFlockOfANewOpenWithTheSameOwner() throws {
        defer { connection.stop() }
        let closed = try open(unique: 1)
        let reopened = try open(unique: 2)
        let other = try open(unique: 3)
        // The same kernel owner, 100, for both opens of one program.
        transport.send(FUSE_SETLK.rawValue, unique: 4, node: 2, lockRequest(F_WRLCK, handle: reopened, owner: 100, flock: true))
        #expect(transport.reply(to: 4)?.error == 0)
        var release = fuse_release_in()
        release.fh = closed
        release.lock_owner = 100
        release.release_flags = UInt32(FUSE_RELEASE_FLOCK_UNLOCK)
        transport.send(FUSE_RELEASE.rawValue, unique: 5, node: 2, bytes(of: release))
        #expect(transport.reply(to: 5)?.error == 0)
        transport.send(FUSE_SETLK.rawValue, unique: 6, node: 2, lockRequest(F_WRLCK, handle: other, owner: 200, flock: true))
        #expect(transport.reply(to: 6)?.error == -EAGAIN)
        // Its own release lets it go.
        release.fh = reopened
        transport.send(FUSE_RELEASE.rawValue, unique: 7, node: 2, bytes(of: release))
        #expect(transport.reply(to: 7)?.error == 0)
        transport.send(FUSE_SETLK.rawValue, unique: 8, node: 2, lockRequest(F_WRLCK, handle: other, owner: 200, flock: true))
        #expect(transport.reply(to: 8)?.error == 0)
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
