import Foundation

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
