import CSiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// The kernel's structures filled from the file system's answers.
enum FUSEEncoding {
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
        attr.rdev = attributes.device
        attr.uid = attributes.uid
        attr.gid = attributes.gid
        attr.blksize = 4096
        // Times before 1970 are negative: whole seconds round down, nanoseconds stay positive.
        var (seconds, nanoseconds) = attributes.mtimeNanoseconds.quotientAndRemainder(dividingBy: 1_000_000_000)
        if nanoseconds < 0 {
            seconds -= 1
            nanoseconds += 1_000_000_000
        }
        attr.mtime = UInt64(bitPattern: seconds)
        attr.mtimensec = UInt32(nanoseconds)
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
        if valid & FATTR_UID != 0 { changes.uid = input.uid }
        if valid & FATTR_GID != 0 { changes.gid = input.gid }
        if valid & FATTR_MTIME_NOW != 0 {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            changes.mtimeNanoseconds = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
        } else if valid & FATTR_MTIME != 0 {
            // Seconds beyond what nanoseconds since 1970 can hold saturate instead of trapping.
            let (product, overflow) = Int64(bitPattern: input.mtime).multipliedReportingOverflow(by: 1_000_000_000)
            changes.mtimeNanoseconds = overflow ? (Int64(bitPattern: input.mtime) < 0 ? .min : .max) : product &+ Int64(input.mtimensec)
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

    static func statfsOut(_ figures: FUSEStatistics) -> fuse_statfs_out {
        var out = fuse_statfs_out()
        out.st.bsize = figures.blockSize
        out.st.frsize = figures.blockSize
        out.st.blocks = figures.blocks
        out.st.bfree = figures.freeBlocks
        out.st.bavail = figures.freeBlocks
        out.st.files = figures.files
        out.st.ffree = figures.freeFiles
        out.st.namelen = 255
        return out
    }

    static func fileLock(_ lock: FUSELock) -> fuse_file_lock {
        var out = fuse_file_lock()
        out.start = lock.start
        out.end = lock.end
        out.pid = lock.pid
        switch lock.kind {
        case .read: out.type = UInt32(F_RDLCK)
        case .write: out.type = UInt32(F_WRLCK)
        case .unlock: out.type = UInt32(F_UNLCK)
        }
        return out
    }

    /// The `fuse_direntplus` records of `entries` from index `offset`, as many as fit in `size` bytes:
    /// each name with its entry as a lookup answers it (and counted as one, as the kernel counts it),
    /// except `.` and `..`, which the kernel takes no entry for. A name that has gone meanwhile goes
    /// without one (node 0), which the kernel takes as "look it up when needed".
    static func directoryPlusPage(
        _ entries: [FUSEDirectoryEntry], in directory: UInt64, from offset: UInt64, size: Int, fileSystem: any FUSEFileSystem
    ) -> [UInt8] {
        page(of: entries, from: offset, size: size, header: MemoryLayout<fuse_entry_out>.size) { entry in
            guard entry.name != "." && entry.name != "..", let found = try? fileSystem.lookup(parent: directory, name: entry.name) else {
                return [UInt8](repeating: 0, count: MemoryLayout<fuse_entry_out>.size)
            }
            return withUnsafeBytes(of: entryOut(found)) { Array($0) }
        }
    }

    /// The `fuse_dirent` records of `entries` from index `offset`, as many as fit in `size` bytes; each
    /// record's `off` is the index of the entry after it, which the kernel sends back to continue.
    static func directoryPage(_ entries: [FUSEDirectoryEntry], from offset: UInt64, size: Int) -> [UInt8] {
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
