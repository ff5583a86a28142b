import CSiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// One opcode's entry: its name (for logs and tests) and how it is answered. A handler decodes its
/// arguments (a body too short for them is EINVAL), calls the file system and replies, now or later
/// (``FUSEDispatcher/later(_:_:_:send:)``); an error it throws becomes the reply's errno.
struct FUSEOperation: Sendable {
    let name: String
    let handle: @Sendable (FUSEDispatcher, FUSERequest, FUSEReply) throws -> Void

    init(_ name: String, _ handle: @escaping @Sendable (FUSEDispatcher, FUSERequest, FUSEReply) throws -> Void) {
        self.name = name
        self.handle = handle
    }
}

extension FUSEDispatcher {
    /// Every opcode Silo answers; any other is answered ENOSYS, which the kernel remembers for most.
    static let operations: [UInt32: FUSEOperation] = [
        FUSE_INIT.rawValue: FUSEOperation("INIT") { try $0.initialize($1, $2) },
        FUSE_DESTROY.rawValue: FUSEOperation("DESTROY") { _, _, reply in reply.ok() },
        // Forgets are never answered.
        FUSE_FORGET.rawValue: FUSEOperation("FORGET") { dispatcher, request, _ in try dispatcher.forget(request) },
        FUSE_BATCH_FORGET.rawValue: FUSEOperation("BATCH_FORGET") { dispatcher, request, _ in try dispatcher.forgetBatch(request) },
        // An interrupt is not answered either: the request it names answers (EINTR if it stopped).
        FUSE_INTERRUPT.rawValue: FUSEOperation("INTERRUPT") { dispatcher, request, _ in
            dispatcher.pending.interrupt(try request.required(fuse_interrupt_in.self).unique)
        },
        FUSE_LOOKUP.rawValue: FUSEOperation("LOOKUP") { try $0.lookup($1, $2) },
        FUSE_GETATTR.rawValue: FUSEOperation("GETATTR") { try $0.getAttributes($1, $2) },
        FUSE_SETATTR.rawValue: FUSEOperation("SETATTR") { try $0.setAttributes($1, $2) },
        FUSE_READLINK.rawValue: FUSEOperation("READLINK") { dispatcher, request, reply in
            reply.send(bytes: Array(try dispatcher.fileSystem.readLink(request.node).utf8))
        },
        FUSE_OPEN.rawValue: FUSEOperation("OPEN") { try $0.open($1, $2) },
        FUSE_READ.rawValue: FUSEOperation("READ") { try $0.read($1, $2) },
        FUSE_WRITE.rawValue: FUSEOperation("WRITE") { try $0.write($1, $2) },
        FUSE_FLUSH.rawValue: FUSEOperation("FLUSH") { try $0.flush($1, $2) },
        FUSE_FSYNC.rawValue: FUSEOperation("FSYNC") { dispatcher, request, reply in
            let kernelHandle = request.argument(fuse_fsync_in.self)?.fh ?? 0
            try dispatcher.fileSystem.fsync(request.node, handle: try dispatcher.handle(kernelHandle))
            reply.ok()
        },
        FUSE_FALLOCATE.rawValue: FUSEOperation("FALLOCATE") { dispatcher, request, reply in
            let input = try request.required(fuse_fallocate_in.self)
            try dispatcher.fileSystem.allocate(
                request.node, handle: try dispatcher.handle(input.fh), offset: input.offset, length: input.length, mode: input.mode)
            reply.ok()
        },
        FUSE_RELEASE.rawValue: FUSEOperation("RELEASE") { try $0.release($1, $2) },
        FUSE_OPENDIR.rawValue: FUSEOperation("OPENDIR") { try $0.openDirectory($1, $2) },
        FUSE_READDIR.rawValue: FUSEOperation("READDIR") { try $0.readDirectory($1, $2, plus: false) },
        FUSE_READDIRPLUS.rawValue: FUSEOperation("READDIRPLUS") { try $0.readDirectory($1, $2, plus: true) },
        FUSE_RELEASEDIR.rawValue: FUSEOperation("RELEASEDIR") { dispatcher, request, reply in
            if let release = request.argument(fuse_release_in.self) { dispatcher.directories.close(release.fh) }
            reply.ok()
        },
        FUSE_STATFS.rawValue: FUSEOperation("STATFS") { dispatcher, _, reply in
            reply.send(FUSEEncoding.statfsOut(try dispatcher.fileSystem.statistics()))
        },
        FUSE_CREATE.rawValue: FUSEOperation("CREATE") { try $0.create($1, $2) },
        FUSE_MKNOD.rawValue: FUSEOperation("MKNOD") { try $0.makeNode($1, $2) },
        FUSE_TMPFILE.rawValue: FUSEOperation("TMPFILE") { try $0.createNameless($1, $2) },
        FUSE_MKDIR.rawValue: FUSEOperation("MKDIR") { dispatcher, request, reply in
            let input = try request.required(fuse_mkdir_in.self)
            let name = try request.requiredName(at: MemoryLayout<fuse_mkdir_in>.size)
            let entry = try dispatcher.fileSystem.makeDirectory(
                parent: request.node, name: name, mode: input.mode & ~input.umask & 0o7777, caller: request.caller)
            reply.send(FUSEEncoding.entryOut(entry))
        },
        FUSE_SYMLINK.rawValue: FUSEOperation("SYMLINK") { dispatcher, request, reply in
            let name = try request.requiredName()
            let target = try request.requiredName(at: name.utf8.count + 1, maximum: 4095)
            reply.send(
                FUSEEncoding.entryOut(try dispatcher.fileSystem.makeSymlink(parent: request.node, name: name, target: target, caller: request.caller)))
        },
        FUSE_UNLINK.rawValue: FUSEOperation("UNLINK") { try $0.remove($1, $2, directory: false) },
        FUSE_RMDIR.rawValue: FUSEOperation("RMDIR") { try $0.remove($1, $2, directory: true) },
        FUSE_RENAME.rawValue: FUSEOperation("RENAME") { try $0.rename($1, $2, flagged: false) },
        FUSE_RENAME2.rawValue: FUSEOperation("RENAME2") { try $0.rename($1, $2, flagged: true) },
        FUSE_LINK.rawValue: FUSEOperation("LINK") { dispatcher, request, reply in
            // The request names the new name's directory; its body, the file that takes the name.
            let input = try request.required(fuse_link_in.self)
            let name = try request.requiredName(at: MemoryLayout<fuse_link_in>.size)
            reply.send(FUSEEncoding.entryOut(try dispatcher.fileSystem.link(input.oldnodeid, parent: request.node, name: name)))
        },
        FUSE_GETXATTR.rawValue: FUSEOperation("GETXATTR") { dispatcher, request, reply in
            let input = try request.required(fuse_getxattr_in.self)
            let name = try request.requiredName(at: MemoryLayout<fuse_getxattr_in>.size)
            try dispatcher.sized(try dispatcher.fileSystem.extendedAttribute(request.node, name: name), room: input.size, reply)
        },
        FUSE_LISTXATTR.rawValue: FUSEOperation("LISTXATTR") { dispatcher, request, reply in
            let input = try request.required(fuse_getxattr_in.self)
            let names = try dispatcher.fileSystem.extendedAttributeNames(request.node, caller: request.caller)
            try dispatcher.sized(names.flatMap { Array($0.utf8) + [0] }, room: input.size, reply)
        },
        FUSE_SETXATTR.rawValue: FUSEOperation("SETXATTR") { dispatcher, request, reply in
            // The compatible form, size and flags (FUSE_COMPAT_SETXATTR_IN_SIZE): FUSE_SETXATTR_EXT is
            // not asked for at INIT.
            let header = try request.bytes(at: 0, count: Int(FUSE_COMPAT_SETXATTR_IN_SIZE))
            let size = header.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
            let flags = header.loadUnaligned(fromByteOffset: 4, as: Int32.self)
            let name = try request.requiredName(at: header.count)
            let value = try request.bytes(at: header.count + name.utf8.count + 1, count: Int(size))
            try dispatcher.fileSystem.setExtendedAttribute(request.node, name: name, value: Array(value), flags: flags)
            reply.ok()
        },
        FUSE_REMOVEXATTR.rawValue: FUSEOperation("REMOVEXATTR") { dispatcher, request, reply in
            try dispatcher.fileSystem.removeExtendedAttribute(request.node, name: try request.requiredName())
            reply.ok()
        },
        FUSE_GETLK.rawValue: FUSEOperation("GETLK") { try $0.getLock($1, $2) },
        FUSE_SETLK.rawValue: FUSEOperation("SETLK") { try $0.setLock($1, $2, wait: false) },
        FUSE_SETLKW.rawValue: FUSEOperation("SETLKW") { try $0.setLock($1, $2, wait: true) },
    ]

    static func operation(_ opcode: UInt32) -> FUSEOperation? { operations[opcode] }

    /// getxattr's and listxattr's answer: with `room` 0, how many bytes the value takes; else the
    /// value, or ERANGE when it does not fit.
    func sized(_ value: [UInt8], room: UInt32, _ reply: FUSEReply) throws {
        if room == 0 {
            var out = fuse_getxattr_out()
            out.size = UInt32(value.count)
            return reply.send(out)
        }
        guard value.count <= Int(room) else { throw FUSEError(ERANGE) }
        reply.send(bytes: value)
    }

    // MARK: The connection

    private func initialize(_ request: FUSERequest, _ reply: FUSEReply) throws {
        let input = try request.required(fuse_init_in.self)
        var out = fuse_init_out()
        out.major = UInt32(FUSE_KERNEL_VERSION)
        // A kernel speaking another major version: answer with ours, as the protocol asks.
        guard input.major == out.major else { return reply.send(out) }
        let minor = min(input.minor, Self.protocolMinor)
        out.minor = minor
        let offered = UInt64(input.flags) | (input.flags & UInt32(FUSE_INIT_EXT) != 0 ? UInt64(input.flags2) << 32 : 0)
        // No writeback cache: the kernel turns passthrough off when both are asked for, and a commit
        // must see every write that returned, which a writeback cache would still hold back.
        // READDIRPLUS: a listing carries each entry's attributes, so a walk over a tree (find, ls -l)
        // needs no LOOKUP per name. Locks only when the file system keeps them (else the kernel does).
        var wanted: UInt64 =
            UInt64(FUSE_ASYNC_READ) | UInt64(FUSE_BIG_WRITES) | UInt64(FUSE_MAX_PAGES) | UInt64(FUSE_PARALLEL_DIROPS)
            | UInt64(FUSE_CACHE_SYMLINKS) | UInt64(FUSE_INIT_EXT) | UInt64(FUSE_DO_READDIRPLUS)
        if options.passthrough { wanted |= SILO_FUSE_PASSTHROUGH }
        if fileSystem.handlesLocks { wanted |= UInt64(FUSE_POSIX_LOCKS) | UInt64(FUSE_FLOCK_LOCKS) }
        let flags = offered & wanted
        let passthrough = flags & SILO_FUSE_PASSTHROUGH != 0
        // Backing files are plain files on a local disk: one level of stacking.
        if passthrough { out.unused.0 = 1 }
        agreed(minor: minor, passthrough: passthrough)
        out.flags = UInt32(truncatingIfNeeded: flags)
        out.flags2 = UInt32(truncatingIfNeeded: flags >> 32)
        out.max_readahead = input.max_readahead
        out.max_write = UInt32(options.maxWrite)
        out.max_pages = UInt16(options.maxWrite / 4096)
        out.max_background = 64
        out.congestion_threshold = 48
        out.time_gran = 1
        reply.send(out)
    }

    private func forget(_ request: FUSERequest) throws {
        fileSystem.forget(node: request.node, lookups: try request.required(fuse_forget_in.self).nlookup)
    }

    private func forgetBatch(_ request: FUSERequest) throws {
        let batch = try request.required(fuse_batch_forget_in.self)
        let start = MemoryLayout<fuse_batch_forget_in>.size
        let size = MemoryLayout<fuse_forget_one>.size
        for index in 0..<Int(batch.count) {
            let offset = start + index * size
            guard offset + size <= request.body.count else { return }
            let one = request.body.loadUnaligned(fromByteOffset: offset, as: fuse_forget_one.self)
            fileSystem.forget(node: one.nodeid, lookups: one.nlookup)
        }
    }

    // MARK: Names and attributes

    private func lookup(_ request: FUSERequest, _ reply: FUSEReply) throws {
        let name = try request.requiredName()
        reply.send(FUSEEncoding.entryOut(try fileSystem.lookup(parent: request.node, name: name)))
    }

    private func getAttributes(_ request: FUSERequest, _ reply: FUSEReply) throws {
        var out = fuse_attr_out()
        FUSEEncoding.fill(&out.attr, try fileSystem.attributes(of: request.node))
        FUSEEncoding.setTimeout(fileSystem.attributeTimeout(of: request.node), &out.attr_valid, &out.attr_valid_nsec)
        reply.send(out)
    }

    private func setAttributes(_ request: FUSERequest, _ reply: FUSEReply) throws {
        var changes = FUSEEncoding.changes(try request.required(fuse_setattr_in.self))
        if let kernelHandle = changes.handle { changes.handle = try handle(kernelHandle) }
        var out = fuse_attr_out()
        FUSEEncoding.fill(&out.attr, try fileSystem.setAttributes(of: request.node, changes))
        FUSEEncoding.setTimeout(fileSystem.attributeTimeout(of: request.node), &out.attr_valid, &out.attr_valid_nsec)
        reply.send(out)
    }

    /// `O_TMPFILE`: a file with no name in directory `request.node`, open, which a `linkat` may name.
    private func createNameless(_ request: FUSERequest, _ reply: FUSEReply) throws {
        let input = try request.required(fuse_create_in.self)
        let (entry, opened) = try fileSystem.createNameless(
            parent: request.node, mode: input.mode & ~input.umask, flags: Int32(bitPattern: input.flags), caller: request.caller)
        let open = try openOut(entry.attributes.node, opened, readOnly: false)
        var payload = withUnsafeBytes(of: FUSEEncoding.entryOut(entry)) { Array($0) }
        withUnsafeBytes(of: open) { payload += $0 }
        reply.send(bytes: payload)
    }

    private func create(_ request: FUSERequest, _ reply: FUSEReply) throws {
        let input = try request.required(fuse_create_in.self)
        let name = try request.requiredName(at: MemoryLayout<fuse_create_in>.size)
        let (entry, opened) = try fileSystem.create(
            parent: request.node, name: name, mode: input.mode & ~input.umask, flags: Int32(bitPattern: input.flags), caller: request.caller
        )
        let open = try openOut(entry.attributes.node, opened, readOnly: false)
        var payload = withUnsafeBytes(of: FUSEEncoding.entryOut(entry)) { Array($0) }
        withUnsafeBytes(of: open) { payload += $0 }
        reply.send(bytes: payload)
    }

    /// A regular file (created and released at once), a named pipe, a Unix socket or a device node.
    private func makeNode(_ request: FUSERequest, _ reply: FUSEReply) throws {
        let input = try request.required(fuse_mknod_in.self)
        let name = try request.requiredName(at: MemoryLayout<fuse_mknod_in>.size)
        switch input.mode & S_IFMT {
        case S_IFREG: break
        case S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK:
            let mode = input.mode & S_IFMT | (input.mode & ~input.umask & 0o7777)
            return reply.send(
                FUSEEncoding.entryOut(try fileSystem.makeNode(parent: request.node, name: name, mode: mode, device: input.rdev, caller: request.caller)))
        default: throw FUSEError(EPERM)
        }
        let (entry, opened) = try fileSystem.create(
            parent: request.node, name: name, mode: input.mode & ~input.umask, flags: O_WRONLY, caller: request.caller)
        if let backing = opened.backingFile { Glibc.close(backing) }
        fileSystem.release(entry.attributes.node, handle: opened.handle)
        reply.send(FUSEEncoding.entryOut(entry))
    }

    private func remove(_ request: FUSERequest, _ reply: FUSEReply, directory: Bool) throws {
        try fileSystem.remove(parent: request.node, name: try request.requiredName(), directory: directory)
        reply.ok()
    }

    private func rename(_ request: FUSERequest, _ reply: FUSEReply, flagged: Bool) throws {
        let size = flagged ? MemoryLayout<fuse_rename2_in>.size : MemoryLayout<fuse_rename_in>.size
        let input = try request.required(fuse_rename_in.self)
        let name = try request.requiredName(at: size)
        let newName = try request.requiredName(at: size + name.utf8.count + 1)
        let flags = flagged ? try request.required(fuse_rename2_in.self).flags : 0
        try fileSystem.rename(parent: request.node, name: name, to: input.newdir, newName: newName, flags: flags, caller: request.caller)
        reply.ok()
    }

    // MARK: Files

    private func open(_ request: FUSERequest, _ reply: FUSEReply) throws {
        let flags = Int32(bitPattern: request.argument(fuse_open_in.self)?.flags ?? 0)
        let opened = try fileSystem.open(request.node, flags: flags)
        reply.send(try openOut(request.node, opened, readOnly: flags & O_ACCMODE == O_RDONLY))
    }

    private func read(_ request: FUSERequest, _ reply: FUSEReply) throws {
        let read = try request.required(fuse_read_in.self)
        let bytes = try fileSystem.read(request.node, handle: try handle(read.fh), offset: read.offset, size: Int(read.size))
        served(bytes: bytes.count)
        reply.send(bytes: bytes)
    }

    private func write(_ request: FUSERequest, _ reply: FUSEReply) throws {
        let input = try request.required(fuse_write_in.self)
        let data = try request.bytes(at: MemoryLayout<fuse_write_in>.size, count: Int(input.size))
        var out = fuse_write_out()
        out.size = UInt32(try fileSystem.write(request.node, handle: try handle(input.fh), offset: input.offset, bytes: data))
        reply.send(out)
    }

    /// A close: with locks kept by the file system, the closing process's POSIX locks on the file
    /// go (POSIX drops them at any close of the file), before the close returns.
    private func flush(_ request: FUSERequest, _ reply: FUSEReply) throws {
        guard let flush = request.argument(fuse_flush_in.self) else { return reply.ok() }
        let handle = try handle(flush.fh)
        // The owner's locks go at close even when what it wrote could not be kept (the close says so).
        var failure: FUSEError?
        do {
            try fileSystem.flush(request.node, handle: handle)
        } catch let error as FUSEError {
            failure = error
        }
        guard fileSystem.handlesLocks else {
            if let failure { throw failure }
            return reply.ok()
        }
        unlockAll(owner: flush.lock_owner, flock: false, node: request.node, handle: handle, request, reply, failure: failure)
    }

    /// The last close of an open file; a `flock` lock it held is released with it (its owner is the
    /// open file's handle, see ``FUSELock/owner``).
    private func release(_ request: FUSERequest, _ reply: FUSEReply) throws {
        guard let release = request.argument(fuse_release_in.self),
            let file = files.release(release.fh, unregister: { transport.closeBacking($0) })
        else { return reply.ok() }
        fileSystem.release(request.node, handle: file.handle)
        guard fileSystem.handlesLocks, release.release_flags & UInt32(FUSE_RELEASE_FLOCK_UNLOCK) != 0 else { return reply.ok() }
        unlockAll(owner: release.fh, flock: true, node: request.node, handle: file.handle, request, reply)
    }

    /// Releases every lock `owner` holds on the node, then answers.
    private func unlockAll(
        owner: UInt64, flock: Bool, node: UInt64, handle: UInt64, _ request: FUSERequest, _ reply: FUSEReply, failure: FUSEError? = nil
    ) {
        let fileSystem = self.fileSystem
        let unlock = FUSELock(kind: .unlock, owner: owner, isFlock: flock)
        later(request, reply, {
            try await fileSystem.setLock(node, handle: handle, unlock, wait: false)
            if let failure { throw failure }
        }, send: { _, reply in reply.ok() })
    }

    // MARK: Directories

    /// The listing is taken once per pass over an open directory and paged from memory, so a
    /// directory of n names costs one listing, not one per page.
    private func openDirectory(_ request: FUSERequest, _ reply: FUSEReply) throws {
        _ = try fileSystem.attributes(of: request.node)
        var out = fuse_open_out()
        out.fh = directories.open()
        reply.send(out)
    }

    private func readDirectory(_ request: FUSERequest, _ reply: FUSEReply, plus: Bool) throws {
        let read = try request.required(fuse_read_in.self)
        // A read from the start (the first, or after rewinddir) takes the listing afresh.
        var entries = read.offset == 0 ? nil : directories.entries(read.fh)
        if entries == nil {
            entries = try fileSystem.listDirectory(request.node)
            directories.replace(read.fh, with: entries!)
        }
        if plus {
            reply.send(bytes: FUSEEncoding.directoryPlusPage(entries!, in: request.node, from: read.offset, size: Int(read.size), fileSystem: fileSystem))
        } else {
            reply.send(bytes: FUSEEncoding.directoryPage(entries!, from: read.offset, size: Int(read.size)))
        }
    }

    // MARK: Locks

    private func getLock(_ request: FUSERequest, _ reply: FUSEReply) throws {
        let input = try request.required(fuse_lk_in.self)
        let asked = try FUSELock(input)
        var out = fuse_lk_out()
        out.lk = FUSEEncoding.fileLock(try fileSystem.conflictingLock(request.node, handle: try handle(input.fh), asked) ?? asked.unlocked)
        reply.send(out)
    }

    /// Taken or released from a task: a wait for a lock another holds holds no request thread, and
    /// an interrupt (the waiting program got a signal) ends it with EINTR.
    private func setLock(_ request: FUSERequest, _ reply: FUSEReply, wait: Bool) throws {
        let input = try request.required(fuse_lk_in.self)
        let lock = try FUSELock(input)
        let handle = try handle(input.fh)
        let node = request.node
        let fileSystem = self.fileSystem
        later(request, reply, { try await fileSystem.setLock(node, handle: handle, lock, wait: wait) }, send: { _, reply in reply.ok() })
    }
}
