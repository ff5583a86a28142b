import CSiloFUSE
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One mounted file system: the `/dev/fuse` connection, the kernel protocol spoken over it, and the
/// threads that read requests and answer them from a ``FUSEFileSystem``.
public final class FUSESession: @unchecked Sendable {
    public struct Options: Sendable {
        /// Shown in `mount` output and /proc/mounts.
        public var source = "silo"
        public var readOnly = false
        /// Let users other than the mounting one use the mount (root mounts only).
        public var allowOther = true
        /// Largest write the kernel sends in one request, and the read size it asks for.
        public var maxWrite = 1 << 20
        /// Ask for passthrough (Linux 6.9+): opens the file system gives a backing file are then read
        /// and written by the kernel directly. It needs CAP_SYS_ADMIN; without it opens are served.
        public var passthrough = true
        public init() {}
    }

    /// The protocol version this implementation speaks: 7.40, the first with passthrough.
    static let protocolMinor: UInt32 = 40

    /// Where the file system is mounted: the absolute path without symlinks or repeated slashes.
    public private(set) var mountPoint: String
    let fileSystem: any FUSEFileSystem
    let options: Options
    private var device: Int32 = -1
    private let lock = NSLock()
    private var mounted = false
    private var threads: [Thread] = []
    /// Written to at unmount: wakes every request thread out of its wait for the next request.
    private var wakeup: (read: Int32, write: Int32) = (-1, -1)
    private var descriptors: [Int32] = []
    private let finished = DispatchGroup()
    private let directories = OpenDirectories()
    private let files = OpenFiles()
    /// The kernel's flags from INIT, once it has arrived.
    public private(set) var kernelMinor: UInt32 = 0
    /// Whether opens with a backing file pass through: the kernel agreed at INIT, and registering a
    /// backing file has not been refused (it is, with EPERM, without CAP_SYS_ADMIN).
    public var passthroughEnabled: Bool { lock.withLock { passthrough } }
    private var passthrough = false
    /// How many opens are passed through to backing files now.
    public var passthroughOpens: Int { files.passthroughOpens }

    /// What the session has done so far, for status reports.
    public struct Counters: Sendable, Equatable {
        /// File opens handed to the kernel with a backing file, and opens the file system served.
        public var passedThroughOpens: Int
        public var servedOpens: Int
        /// Bytes of file data the file system answered reads with (passed-through reads are not seen).
        public var bytesServed: Int
    }

    public var counters: Counters {
        let opens = files.openCounts
        return Counters(passedThroughOpens: opens.passedThrough, servedOpens: opens.served, bytesServed: lock.withLock { bytesServed })
    }
    private var bytesServed = 0

    public init(fileSystem: any FUSEFileSystem, mountPoint: String, options: Options = Options()) {
        self.fileSystem = fileSystem
        self.mountPoint = mountPoint
        self.options = options
    }

    /// Mounts at ``mountPoint``: as root, by opening `/dev/fuse` and calling mount(2); otherwise
    /// through `fusermount3`.
    public func mount() throws {
        guard let resolved = MountTable.canonical(mountPoint) else { throw FUSEError(errno) }
        mountPoint = resolved
        if geteuid() == 0 {
            try mountDirectly()
        } else {
            var text = "default_permissions,subtype=silo,fsname=\(options.source.replacingOccurrences(of: ",", with: "_"))"
            if options.readOnly { text += ",ro" }
            device = try Fusermount.mount(at: mountPoint, options: text)
        }
        lock.withLock { mounted = true }
    }

    private func mountDirectly() throws {
        device = Glibc.open("/dev/fuse", O_RDWR | O_CLOEXEC)
        guard device >= 0 else { throw FUSEError(errno) }
        var info = stat()
        guard stat(mountPoint, &info) == 0 else {
            let code = errno
            Glibc.close(device)
            throw FUSEError(code)
        }
        var text = "fd=\(device),rootmode=\(String(info.st_mode & S_IFMT, radix: 8)),user_id=\(getuid()),group_id=\(getgid())"
        text += ",default_permissions"
        if options.allowOther { text += ",allow_other" }
        guard silo_fuse_mount(mountPoint, options.source, text, options.readOnly ? 1 : 0) == 0 else {
            let code = errno
            Glibc.close(device)
            throw FUSEError(code)
        }
    }

    /// Starts `threads` request readers (each on its own clone of the connection) and returns. Where
    /// the connection cannot be cloned (without root, /dev/fuse may not open), one thread serves it.
    public func start(threads count: Int = 2) throws {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw FUSEError(errno) }
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        wakeup = (pipeEnds[0], pipeEnds[1])
        var descriptors = [device]
        for _ in 1..<max(1, count) {
            let clone = Glibc.open("/dev/fuse", O_RDWR | O_CLOEXEC)
            guard clone >= 0, silo_fuse_clone(clone, device) == 0 else {
                if clone >= 0 { Glibc.close(clone) }
                break
            }
            descriptors.append(clone)
        }
        self.descriptors = descriptors
        for fd in descriptors {
            // Non-blocking: several threads poll the same queue of requests, and one that finds it
            // readable may lose the request to another; a blocking read would then sit in the kernel,
            // deaf to the wake-up of an unmount, until some later request came.
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            finished.enter()
            let thread = Thread { [self] in
                serve(fd)
                finished.leave()
            }
            thread.name = "silo-fuse"
            threads.append(thread)
            thread.start()
        }
    }

    /// Detaches the mount, ends the connection and waits for the request threads. Files still open on
    /// the mount fail from then on (ENOTCONN), as they would if the serving process died.
    public func unmount() {
        let wasMounted = lock.withLock {
            defer { mounted = false }
            return mounted
        }
        guard wasMounted else { return }
        Self.detach(mountPoint)
        // A detached mount lives on while files are open on it. Waking the request threads and closing
        // every descriptor of the connection ends it now: the kernel aborts a connection whose last
        // descriptor closes.
        if wakeup.write >= 0 { _ = Glibc.write(wakeup.write, "x", 1) }
        finished.wait()
        for fd in descriptors where fd != device { Glibc.close(fd) }
        descriptors = []
        if device >= 0 { Glibc.close(device) }
        device = -1
        for fd in [wakeup.read, wakeup.write] where fd >= 0 { Glibc.close(fd) }
        wakeup = (-1, -1)
    }

    /// Lazily unmounts the FUSE mount at `mountPoint`: with umount2 as root, else through fusermount3
    /// (which lets a user unmount only what they mounted). Returns 0 or an errno.
    @discardableResult
    public static func detach(_ mountPoint: String) -> Int32 {
        if silo_fuse_unmount(mountPoint) == 0 { return 0 }
        let code = errno
        if code == EPERM, Fusermount.unmount(mountPoint) { return 0 }
        return code
    }

    /// Blocks until the file system is unmounted (by ``unmount()`` or from outside).
    public func wait() {
        finished.wait()
    }

    // MARK: The request loop

    private func serve(_ fd: Int32) {
        let capacity = options.maxWrite + 64 * 1024
        var buffer = [UInt8](repeating: 0, count: capacity)
        var waits = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeup.read, events: Int16(POLLIN), revents: 0)]
        while true {
            waits[0].revents = 0
            waits[1].revents = 0
            guard poll(&waits, 2, -1) >= 0 || errno == EINTR else { return }
            if waits[1].revents != 0 { return }  // unmounting
            if waits[0].revents & Int16(POLLIN) == 0 {
                if waits[0].revents != 0 { return }  // POLLERR: the connection is gone
                continue
            }
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, capacity) }
            if count < 0 {
                switch errno {
                case EINTR, EAGAIN, ENOENT: continue  // ENOENT: the request was interrupted before we read it
                default: return  // ENODEV: unmounted
                }
            }
            guard count >= MemoryLayout<fuse_in_header>.size else { return }
            buffer.withUnsafeBytes { raw in
                handle(Request(bytes: UnsafeRawBufferPointer(rebasing: raw[0..<count])), on: fd)
            }
        }
    }

    struct Request {
        let header: fuse_in_header
        let body: UnsafeRawBufferPointer

        init(bytes: UnsafeRawBufferPointer) {
            header = bytes.loadUnaligned(as: fuse_in_header.self)
            body = UnsafeRawBufferPointer(rebasing: bytes[MemoryLayout<fuse_in_header>.size...])
        }

        func argument<T>(_ type: T.Type) -> T? {
            guard body.count >= MemoryLayout<T>.size else { return nil }
            return body.loadUnaligned(as: T.self)
        }

        /// The NUL-terminated name at `offset` in the body.
        func name(at offset: Int = 0) -> String? {
            guard offset < body.count else { return nil }
            let bytes = body[(body.startIndex + offset)...]
            guard let end = bytes.firstIndex(of: 0) else { return nil }
            return String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
        }
    }

    private func handle(_ request: Request, on fd: Int32) {
        let opcode = request.header.opcode
        let node = request.header.nodeid
        do {
            switch opcode {
            case FUSE_INIT.rawValue:
                try reply(fd, request, value: initialize(request))
            case FUSE_DESTROY.rawValue:
                reply(fd, request, bytes: [])
            case FUSE_FORGET.rawValue:
                if let forget = request.argument(fuse_forget_in.self) {
                    fileSystem.forget(node: node, lookups: forget.nlookup)
                }
            case FUSE_BATCH_FORGET.rawValue:
                forgetBatch(request)
            case FUSE_INTERRUPT.rawValue:
                // Requests are answered synchronously; there is nothing in flight to abandon.
                break
            case FUSE_LOOKUP.rawValue:
                guard let name = request.name() else { throw FUSEError(EINVAL) }
                try reply(fd, request, value: Self.entryOut(try fileSystem.lookup(parent: node, name: name)))
            case FUSE_GETATTR.rawValue:
                var out = fuse_attr_out()
                Self.fill(&out.attr, try fileSystem.attributes(of: node))
                Self.setTimeout(fileSystem.attributeTimeout(of: node), &out.attr_valid, &out.attr_valid_nsec)
                try reply(fd, request, value: out)
            case FUSE_READLINK.rawValue:
                reply(fd, request, bytes: Array(try fileSystem.readLink(node).utf8))
            case FUSE_OPEN.rawValue:
                let flags = request.argument(fuse_open_in.self)?.flags ?? 0
                let opened = try fileSystem.open(node, flags: Int32(bitPattern: flags))
                try reply(fd, request, value: try openOut(node, opened, readOnly: Int32(bitPattern: flags) & O_ACCMODE == O_RDONLY))
            case FUSE_OPENDIR.rawValue:
                // The listing is taken once per pass over an open directory and paged from memory, so
                // a directory of n names costs one listing, not one per page.
                _ = try fileSystem.attributes(of: node)
                var out = fuse_open_out()
                out.fh = directories.open()
                try reply(fd, request, value: out)
            case FUSE_READ.rawValue:
                guard let read = request.argument(fuse_read_in.self) else { throw FUSEError(EINVAL) }
                let bytes = try fileSystem.read(node, handle: try handle(read.fh), offset: read.offset, size: Int(read.size))
                lock.withLock { bytesServed += bytes.count }
                reply(fd, request, bytes: bytes)
            case FUSE_READDIR.rawValue, FUSE_READDIRPLUS.rawValue:
                guard let read = request.argument(fuse_read_in.self) else { throw FUSEError(EINVAL) }
                // A read from the start (the first, or after rewinddir) takes the listing afresh.
                var entries = read.offset == 0 ? nil : directories.entries(read.fh)
                if entries == nil {
                    entries = try fileSystem.listDirectory(node)
                    directories.replace(read.fh, with: entries!)
                }
                if opcode == FUSE_READDIRPLUS.rawValue {
                    reply(fd, request, bytes: directoryPlusPage(entries!, in: node, from: read.offset, size: Int(read.size)))
                } else {
                    reply(fd, request, bytes: try Self.directoryPage(entries!, from: read.offset, size: Int(read.size)))
                }
            case FUSE_RELEASE.rawValue:
                if let release = request.argument(fuse_release_in.self),
                    let file = files.release(release.fh, unregister: { _ = silo_fuse_backing_close(device, $0) })
                {
                    fileSystem.release(node, handle: file.handle)
                }
                reply(fd, request, bytes: [])
            case FUSE_RELEASEDIR.rawValue:
                if let release = request.argument(fuse_release_in.self) { directories.close(release.fh) }
                reply(fd, request, bytes: [])
            case FUSE_FLUSH.rawValue:
                reply(fd, request, bytes: [])
            case FUSE_STATFS.rawValue:
                var out = fuse_statfs_out()
                let figures = try fileSystem.statistics()
                out.st.bsize = figures.blockSize
                out.st.frsize = figures.blockSize
                out.st.blocks = figures.blocks
                out.st.bfree = figures.freeBlocks
                out.st.bavail = figures.freeBlocks
                out.st.files = figures.files
                out.st.ffree = figures.freeFiles
                out.st.namelen = 255
                try reply(fd, request, value: out)
            case FUSE_SETATTR.rawValue:
                guard let input = request.argument(fuse_setattr_in.self) else { throw FUSEError(EINVAL) }
                var out = fuse_attr_out()
                var changes = Self.changes(input)
                if let kernelHandle = changes.handle { changes.handle = try handle(kernelHandle) }
                Self.fill(&out.attr, try fileSystem.setAttributes(of: node, changes))
                Self.setTimeout(fileSystem.attributeTimeout(of: node), &out.attr_valid, &out.attr_valid_nsec)
                try reply(fd, request, value: out)
            case FUSE_CREATE.rawValue:
                guard let input = request.argument(fuse_create_in.self),
                    let name = request.name(at: MemoryLayout<fuse_create_in>.size)
                else { throw FUSEError(EINVAL) }
                let (entry, opened) = try fileSystem.create(
                    parent: node, name: name, mode: input.mode & ~input.umask, flags: Int32(bitPattern: input.flags)
                )
                let open = try openOut(entry.attributes.node, opened, readOnly: false)
                var payload = withUnsafeBytes(of: Self.entryOut(entry)) { Array($0) }
                withUnsafeBytes(of: open) { payload += $0 }
                reply(fd, request, bytes: payload)
            case FUSE_MKNOD.rawValue:
                guard let input = request.argument(fuse_mknod_in.self), input.mode & S_IFMT == S_IFREG,
                    let name = request.name(at: MemoryLayout<fuse_mknod_in>.size)
                else { throw FUSEError(EPERM) }
                let (entry, opened) = try fileSystem.create(
                    parent: node, name: name, mode: input.mode & ~input.umask, flags: O_WRONLY
                )
                if let backing = opened.backingFile { Glibc.close(backing) }
                fileSystem.release(entry.attributes.node, handle: opened.handle)
                try reply(fd, request, value: Self.entryOut(entry))
            case FUSE_MKDIR.rawValue:
                guard let input = request.argument(fuse_mkdir_in.self),
                    let name = request.name(at: MemoryLayout<fuse_mkdir_in>.size)
                else { throw FUSEError(EINVAL) }
                let entry = try fileSystem.makeDirectory(parent: node, name: name, mode: input.mode & ~input.umask & 0o7777)
                try reply(fd, request, value: Self.entryOut(entry))
            case FUSE_SYMLINK.rawValue:
                guard let name = request.name(), let target = request.name(at: name.utf8.count + 1) else { throw FUSEError(EINVAL) }
                try reply(fd, request, value: Self.entryOut(try fileSystem.makeSymlink(parent: node, name: name, target: target)))
            case FUSE_UNLINK.rawValue, FUSE_RMDIR.rawValue:
                guard let name = request.name() else { throw FUSEError(EINVAL) }
                try fileSystem.remove(parent: node, name: name, directory: opcode == FUSE_RMDIR.rawValue)
                reply(fd, request, bytes: [])
            case FUSE_RENAME.rawValue, FUSE_RENAME2.rawValue:
                let plain = opcode == FUSE_RENAME.rawValue
                let size = plain ? MemoryLayout<fuse_rename_in>.size : MemoryLayout<fuse_rename2_in>.size
                guard let input = request.argument(fuse_rename_in.self), let name = request.name(at: size),
                    let newName = request.name(at: size + name.utf8.count + 1)
                else { throw FUSEError(EINVAL) }
                let flags = plain ? 0 : request.argument(fuse_rename2_in.self)?.flags ?? 0
                try fileSystem.rename(parent: node, name: name, to: input.newdir, newName: newName, flags: flags)
                reply(fd, request, bytes: [])
            case FUSE_WRITE.rawValue:
                guard let input = request.argument(fuse_write_in.self) else { throw FUSEError(EINVAL) }
                let start = MemoryLayout<fuse_write_in>.size
                guard request.body.count >= start + Int(input.size) else { throw FUSEError(EINVAL) }
                let data = UnsafeRawBufferPointer(rebasing: request.body[(request.body.startIndex + start)..<(request.body.startIndex + start + Int(input.size))])
                var out = fuse_write_out()
                out.size = UInt32(try fileSystem.write(node, handle: try handle(input.fh), offset: input.offset, bytes: data))
                try reply(fd, request, value: out)
            case FUSE_FSYNC.rawValue:
                let kernelHandle = request.argument(fuse_fsync_in.self)?.fh ?? 0
                try fileSystem.fsync(node, handle: try handle(kernelHandle))
                reply(fd, request, bytes: [])
            case FUSE_LINK.rawValue:
                throw FUSEError(EPERM)
            default:
                throw FUSEError.notSupported
            }
        } catch let error as FUSEError {
            replyError(fd, request, error.errno)
        } catch {
            replyError(fd, request, EIO)
        }
    }

    private func initialize(_ request: Request) throws -> fuse_init_out {
        guard let input = request.argument(fuse_init_in.self) else { throw FUSEError(EINVAL) }
        var out = fuse_init_out()
        out.major = UInt32(FUSE_KERNEL_VERSION)
        guard input.major == out.major else {
            // A kernel speaking another major version: answer with ours, as the protocol asks.
            return out
        }
        kernelMinor = min(input.minor, Self.protocolMinor)
        out.minor = kernelMinor
        let offered = UInt64(input.flags) | (input.flags & UInt32(FUSE_INIT_EXT) != 0 ? UInt64(input.flags2) << 32 : 0)
        // No writeback cache: the kernel turns passthrough off when both are asked for, and a commit
        // must see every write that returned, which a writeback cache would still hold back.
        // READDIRPLUS: a listing carries each entry's attributes, so a walk over a tree (find, ls -l)
        // needs no LOOKUP per name.
        var wanted: UInt64 =
            UInt64(FUSE_ASYNC_READ) | UInt64(FUSE_BIG_WRITES) | UInt64(FUSE_MAX_PAGES) | UInt64(FUSE_PARALLEL_DIROPS)
            | UInt64(FUSE_CACHE_SYMLINKS) | UInt64(FUSE_INIT_EXT) | UInt64(FUSE_DO_READDIRPLUS)
        if options.passthrough { wanted |= SILO_FUSE_PASSTHROUGH }
        let flags = offered & wanted
        if flags & SILO_FUSE_PASSTHROUGH != 0 {
            // Backing files are plain files on a local disk: one level of stacking.
            out.unused.0 = 1
            lock.withLock { passthrough = true }
        }
        out.flags = UInt32(truncatingIfNeeded: flags)
        out.flags2 = UInt32(truncatingIfNeeded: flags >> 32)
        out.max_readahead = input.max_readahead
        out.max_write = UInt32(options.maxWrite)
        out.max_pages = UInt16(options.maxWrite / 4096)
        out.max_background = 64
        out.congestion_threshold = 48
        out.time_gran = 1
        return out
    }

    /// The open reply for `opened`, passed through to its backing file when the connection allows.
    /// An open the kernel could not combine with the node's other opens is released and refused.
    private func openOut(_ node: UInt64, _ opened: FUSEOpened, readOnly: Bool) throws -> fuse_open_out {
        var out = fuse_open_out()
        let decision = files.open(node: node, handle: opened.handle, backingFile: opened.backingFile, readOnly: readOnly) { fd in
            guard lock.withLock({ passthrough }) else { return nil }
            let id = silo_fuse_backing_open(device, fd)
            if id > 0 { return id }
            // Refused for want of privilege (or by the kernel): serve every open from now on.
            if errno == EPERM { lock.withLock { passthrough = false } }
            return nil
        }
        switch decision {
        case .busy:
            fileSystem.release(node, handle: opened.handle)
            throw FUSEError(ETXTBSY)
        case .passthrough(let kernelHandle, let backing):
            // The kernel refuses KEEP_CACHE with passthrough: the pages are the backing file's.
            out.fh = kernelHandle
            out.open_flags |= SILO_FOPEN_PASSTHROUGH
            out.padding = UInt32(bitPattern: backing)
        case .served(let kernelHandle):
            out.fh = kernelHandle
            if opened.keepCache { out.open_flags |= UInt32(FOPEN_KEEP_CACHE) }
        }
        return out
    }

    /// The file system's handle for a handle the kernel sent.
    private func handle(_ kernelHandle: UInt64) throws -> UInt64 {
        guard let handle = files.handle(kernelHandle) else { throw FUSEError(EBADF) }
        return handle
    }

    private func forgetBatch(_ request: Request) {
        guard let batch = request.argument(fuse_batch_forget_in.self) else { return }
        let start = MemoryLayout<fuse_batch_forget_in>.size
        let size = MemoryLayout<fuse_forget_one>.size
        for index in 0..<Int(batch.count) {
            let offset = start + index * size
            guard offset + size <= request.body.count else { return }
            let one = request.body.loadUnaligned(fromByteOffset: offset, as: fuse_forget_one.self)
            fileSystem.forget(node: one.nodeid, lookups: one.nlookup)
        }
    }

    // MARK: Replies

    private func reply<T>(_ fd: Int32, _ request: Request, value: T) throws {
        withUnsafeBytes(of: value) { send(fd, request.header.unique, error: 0, $0) }
    }

    private func reply(_ fd: Int32, _ request: Request, bytes: [UInt8]) {
        bytes.withUnsafeBytes { send(fd, request.header.unique, error: 0, $0) }
    }

    private func replyError(_ fd: Int32, _ request: Request, _ errno: Int32) {
        send(fd, request.header.unique, error: -errno, UnsafeRawBufferPointer(start: nil, count: 0))
    }

    private func send(_ fd: Int32, _ unique: UInt64, error: Int32, _ payload: UnsafeRawBufferPointer) {
        var header = fuse_out_header()
        header.unique = unique
        header.error = error
        header.len = UInt32(MemoryLayout<fuse_out_header>.size + payload.count)
        withUnsafeMutableBytes(of: &header) { head in
            var parts = [
                iovec(iov_base: head.baseAddress, iov_len: head.count),
                iovec(iov_base: UnsafeMutableRawPointer(mutating: payload.baseAddress), iov_len: payload.count),
            ]
            // A reply the kernel no longer waits for (its request was interrupted) fails with ENOENT;
            // nothing is to be done about it.
            _ = writev(fd, &parts, payload.count == 0 ? 1 : 2)
        }
    }

    // MARK: Notifications

    /// Tells the kernel to forget what it cached of `node`: attributes and file pages.
    public func invalidate(node: UInt64) {
        var out = fuse_notify_inval_inode_out()
        out.ino = node
        out.off = 0
        out.len = -1
        notify(FUSE_NOTIFY_INVAL_INODE.rawValue, withUnsafeBytes(of: out) { Array($0) })
    }

    /// Tells the kernel to forget the name `name` in directory `parent` (it looks it up again).
    public func invalidate(entry name: String, in parent: UInt64) {
        var out = fuse_notify_inval_entry_out()
        out.parent = parent
        out.namelen = UInt32(name.utf8.count)
        notify(FUSE_NOTIFY_INVAL_ENTRY.rawValue, withUnsafeBytes(of: out) { Array($0) } + Array(name.utf8) + [0])
    }

    /// A notification is a reply with no request: `unique` 0 and the notification's code as the error.
    /// The kernel answers ENOENT for what it does not hold, which is nothing to act on.
    private func notify(_ code: UInt32, _ payload: [UInt8]) {
        let fd = lock.withLock { mounted ? device : -1 }
        guard fd >= 0 else { return }
        payload.withUnsafeBytes { send(fd, 0, error: Int32(code), $0) }
    }

    // MARK: Encoding

    static func setTimeout(_ seconds: Double, _ whole: inout UInt64, _ nanoseconds: inout UInt32) {
        let clamped = max(0, seconds)
        whole = UInt64(clamped)
        nanoseconds = UInt32((clamped - Double(whole)) * 1e9)
    }

    static func fill(_ attr: inout fuse_attr, _ attributes: FUSEAttributes) {
        attr.ino = attributes.node
        attr.size = attributes.size
        attr.blocks = (attributes.size + 511) / 512
        attr.mode = attributes.mode
        attr.nlink = attributes.links
        attr.uid = attributes.uid
        attr.gid = attributes.gid
        attr.blksize = 4096
        let seconds = attributes.mtimeNanoseconds.quotientAndRemainder(dividingBy: 1_000_000_000)
        attr.mtime = UInt64(bitPattern: seconds.quotient)
        attr.mtimensec = UInt32(seconds.remainder)
        attr.ctime = attr.mtime
        attr.ctimensec = attr.mtimensec
        attr.atime = attr.mtime
        attr.atimensec = attr.mtimensec
    }

    static func changes(_ input: fuse_setattr_in) -> FUSEAttributeChanges {
        var changes = FUSEAttributeChanges()
        let valid = Int32(bitPattern: input.valid)
        if valid & FATTR_SIZE != 0 { changes.size = input.size }
        if valid & FATTR_MODE != 0 { changes.mode = input.mode & 0o7777 }
        if valid & FATTR_FH != 0 { changes.handle = input.fh }
        if valid & FATTR_MTIME_NOW != 0 {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            changes.mtimeNanoseconds = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
        } else if valid & FATTR_MTIME != 0 {
            changes.mtimeNanoseconds = Int64(bitPattern: input.mtime) * 1_000_000_000 + Int64(input.mtimensec)
        }
        return changes
    }

    static func entryOut(_ entry: FUSEEntry) -> fuse_entry_out {
        var out = fuse_entry_out()
        out.nodeid = entry.attributes.node
        fill(&out.attr, entry.attributes)
        setTimeout(entry.entryTimeout, &out.entry_valid, &out.entry_valid_nsec)
        setTimeout(entry.attributeTimeout, &out.attr_valid, &out.attr_valid_nsec)
        return out
    }

    /// The `fuse_direntplus` records of `entries` from index `offset`, as many as fit in `size` bytes:
    /// each name with its entry as a lookup answers it (and counted as one, as the kernel counts it),
    /// except `.` and `..`, which the kernel takes no entry for. A name that has gone meanwhile goes
    /// without one (node 0), which the kernel takes as "look it up when needed".
    func directoryPlusPage(_ entries: [FUSEDirectoryEntry], in directory: UInt64, from offset: UInt64, size: Int) -> [UInt8] {
        Self.page(of: entries, from: offset, size: size, header: MemoryLayout<fuse_entry_out>.size) { entry in
            guard entry.name != "." && entry.name != "..", let found = try? fileSystem.lookup(parent: directory, name: entry.name) else {
                return [UInt8](repeating: 0, count: MemoryLayout<fuse_entry_out>.size)
            }
            return withUnsafeBytes(of: Self.entryOut(found)) { Array($0) }
        }
    }

    /// The `fuse_dirent` records of `entries` from index `offset`, as many as fit in `size` bytes; each
    /// record's `off` is the index of the entry after it, which the kernel sends back to continue.
    static func directoryPage(_ entries: [FUSEDirectoryEntry], from offset: UInt64, size: Int) throws -> [UInt8] {
        page(of: entries, from: offset, size: size, header: 0) { _ in [] }
    }

    /// Directory records from index `offset`, as many as fit in `size` bytes, each 8-byte aligned: a
    /// `header`-byte prefix made by `prefix` (only for records that fit), then the `fuse_dirent` and
    /// the name.
    private static func page(
        of entries: [FUSEDirectoryEntry], from offset: UInt64, size: Int, header: Int, prefix: (FUSEDirectoryEntry) -> [UInt8]
    ) -> [UInt8] {
        var page: [UInt8] = []
        var index = Int(min(offset, UInt64(entries.count)))
        let fixed = header + MemoryLayout<fuse_dirent>.size
        while index < entries.count {
            let entry = entries[index]
            let name = Array(entry.name.utf8)
            let length = (fixed + name.count + 7) & ~7
            guard page.count + length <= size else { break }
            page += prefix(entry)
            var dirent = fuse_dirent()
            dirent.ino = entry.node
            dirent.off = UInt64(index + 1)
            dirent.namelen = UInt32(name.count)
            dirent.type = entry.type >> 12
            withUnsafeBytes(of: &dirent) { page += $0.prefix(MemoryLayout<fuse_dirent>.size) }
            page += name
            page += [UInt8](repeating: 0, count: length - fixed - name.count)
            index += 1
        }
        return page
    }
}

/// Listings of open directories, by handle, from OPENDIR to RELEASEDIR.
final class OpenDirectories: @unchecked Sendable {
    private let lock = NSLock()
    private var next: UInt64 = 1
    private var listings: [UInt64: [FUSEDirectoryEntry]] = [:]

    func open() -> UInt64 {
        lock.withLock {
            let handle = next
            next += 1
            return handle
        }
    }

    func replace(_ handle: UInt64, with entries: [FUSEDirectoryEntry]) {
        lock.withLock { listings[handle] = entries }
    }

    func entries(_ handle: UInt64) -> [FUSEDirectoryEntry]? {
        lock.withLock { listings[handle] }
    }

    func close(_ handle: UInt64) {
        _ = lock.withLock { listings.removeValue(forKey: handle) }
    }
}
