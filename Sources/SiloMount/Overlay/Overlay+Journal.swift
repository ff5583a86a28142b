import Foundation
import SiloCore
import SiloStore
import SiloWire

#if canImport(Glibc)
import Glibc
#endif

/// A writable mount's uncommitted changes, written beside their data (`scratch/journal.json`) about
/// once a second, so that if the mount's process dies (SIGKILL, a crash, a power cut after the next
/// sync) what it had not committed can be recovered: `silo volume recover`.
extension Overlay {
    static let journalName = "journal.json"

    struct JournalItem: Codable {
        enum Kind: String, Codable { case file, moved, directory, symlink, fifo, socket, deleted, characterDevice, blockDevice }
        var path: VolumePath
        var kind: Kind
        /// The local file's name under `scratch/data`.
        var local: String?
        var entry: Entry?
        var opaque: Bool?
        var target: String?
        var mode: UInt32
        var mtime: Int64
        var replaces: Bool
        /// Absent in journals written before owners were recorded.
        var owner: Owner?
        var extendedAttributes: ExtendedAttributes?
        /// A device node's number.
        var device: DeviceNumber?
    }

    struct Journal: Codable {
        var volume: String
        /// The version the mount showed when it wrote this.
        var base: Int64
        var savedAtMilliseconds: Int64
        var items: [JournalItem]
    }

    /// Writes the journal of uncommitted changes if they changed since it was last written; returns
    /// whether it wrote. The file is replaced whole (write, fsync, rename), never left half-written.
    @discardableResult
    func saveJournal(volume: VolumeName, base: Version, ifChangedSince last: inout UInt64) throws -> Bool {
        // A name of a linked file is journaled as the file it shares (recovery puts it under each name).
        let (now, dirty) = lock.withLock { (changes, items.filter { $0.value.dirty }.mapValues(resolved)) }
        guard now != last else { return false }
        let journal = Journal(
            volume: volume.rawValue, base: base.rawValue, savedAtMilliseconds: Int64(Date().timeIntervalSince1970 * 1000),
            items: dirty.sorted { $0.key < $1.key }.map { Self.journalItem($0.key, $0.value) }
        )
        try FileIO.replaceFile(at: scratch + "/" + Self.journalName, with: Array(try JSONEncoder().encode(journal)))
        last = now
        return true
    }

    private static func journalItem(_ path: VolumePath, _ item: Item) -> JournalItem {
        var entry = JournalItem(path: path, kind: .deleted, mode: item.mode, mtime: item.mtime, replaces: item.replaces, owner: item.owner)
        entry.extendedAttributes = item.extendedAttributes.isEmpty ? nil : item.extendedAttributes
        switch item.kind {
        case .file(let local):
            entry.kind = .file
            entry.local = String(local.split(separator: "/").last ?? "")
        case .moved(let moved):
            entry.kind = .moved
            entry.entry = moved
        case .directory(let opaque):
            entry.kind = .directory
            entry.opaque = opaque
        case .symlink(let target):
            entry.kind = .symlink
            entry.target = target
        case .special(let kind, let device):
            switch kind {
            case .socket: entry.kind = .socket
            case .characterDevice: entry.kind = .characterDevice
            case .blockDevice: entry.kind = .blockDevice
            default: entry.kind = .fifo
            }
            entry.device = device
        case .deleted, .linked:  // linked names are resolved before they are journaled
            break
        }
        return entry
    }

    /// Reads the journal a dead mount left in `scratch`.
    static func readJournal(scratch: String) throws -> Journal {
        let path = scratch + "/" + journalName
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SiloError(.pathNotFound, "no journal of uncommitted changes at \(path)")
        }
        do {
            return try JSONDecoder().decode(Journal.self, from: data)
        } catch {
            throw SiloError(.storage, "the journal \(path) cannot be read (\(error)); its data files are in \(scratch)/data")
        }
    }

    /// Puts back the uncommitted changes of `journal`, whose local files are in this overlay's scratch.
    func restore(_ journal: Journal) throws {
        try lock.withLock {
            for item in journal.items {
                let kind: Kind
                switch item.kind {
                case .file:
                    guard let name = item.local, !name.isEmpty, !name.contains("/") else {
                        throw SiloError(.storage, "the journal names no local file for \(item.path)")
                    }
                    let local = scratch + "/data/" + name
                    guard access(local, F_OK) == 0 else {
                        throw SiloError(.storage, "the local file of \(item.path) (\(local)) is gone")
                    }
                    nextLocal = max(nextLocal, Int(name) ?? 0)
                    kind = .file(local: local)
                case .moved:
                    guard let entry = item.entry else { throw SiloError(.storage, "the journal lacks the entry moved to \(item.path)") }
                    kind = .moved(entry)
                case .directory: kind = .directory(opaque: item.opaque ?? false)
                case .symlink: kind = .symlink(item.target ?? "")
                case .fifo: kind = .special(.fifo)
                case .socket: kind = .special(.socket)
                case .characterDevice: kind = .special(.characterDevice, device: item.device)
                case .blockDevice: kind = .special(.blockDevice, device: item.device)
                case .deleted: kind = .deleted
                }
                set(
                    item.path,
                    Item(
                        kind: kind, mode: item.mode, mtime: item.mtime, replaces: item.replaces, owner: item.owner,
                        extendedAttributes: item.extendedAttributes ?? [:]))
            }
        }
    }
}
