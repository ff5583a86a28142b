import Foundation
import SiloClient
import SiloCore

/// A shared volume's mount (the seed's `SharedVolume`): every change is a commit of its own as it
/// happens, and what others committed shows at the next open, lookup or listing.
///
/// The change is made in the overlay first, as in a snapshot mount, then committed at once with only
/// its own paths, under preconditions that make it atomic across mounts: a create, mkdir, symlink or
/// link needs its name absent, a rename or an unlink its source present. Of racing mounts one commit
/// lands; the others' fail, their local change is dropped and the program gets the errno a local disk
/// gives. Writes to an open file are committed when it is closed (FLUSH) or fsynced.
extension VolumeFileSystem {
    /// Commits the changes at and beneath `roots` now, after `first` (preconditions, removals that
    /// must find their path); a failed precondition drops those changes (those at `discarding`, when
    /// given) from this mount and throws
    /// `conflict` (the errno the program is to see). When it committed something, then shows the
    /// latest version. Does nothing in a snapshot mount.
    ///
    /// A root this mount holds a lock on is fenced: the commit requires this mount's lease to be
    /// running when it lands, so a holder whose lease lapsed (cut off, then back) cannot overwrite what
    /// the next holder wrote; its change is dropped and the program gets `conflict`'s errno.
    func publish(
        _ roots: [VolumePath], first: [Change] = [], discarding: [VolumePath]? = nil, conflict: @autoclosure () -> SiloError
    ) async throws {
        guard kind == .shared, let overlay else { return }
        let fences = roots.compactMap { root in locks?.fence(for: root).map { Change.require(root, $0) } }
        var committed = false
        do {
            committed = try await commits.withLock {
                try await commit(overlay, author: "mount", roots: roots, first: fences + first) != nil
            }
        } catch let error as SiloError where [.conflict, .pathNotFound, .pathExists, .directoryNotEmpty, .notADirectory, .isADirectory].contains(error.code) {
            overlay.discard(discarding ?? roots)
            _ = try? await reload()
            throw error.code == .conflict ? conflict() : error
        } catch {
            Self.log("could not commit \(Self.named(roots)): \(error)")
            throw error
        }
        // Nothing to commit (a close after the change was committed already): nothing new to show.
        if committed {
            do {
                _ = try await reload()
            } catch {
                Self.log("committed \(Self.named(roots)), then could not move to the latest version: \(error)")
                throw error
            }
        }
    }

    private static func named(_ paths: [VolumePath]) -> String { paths.map(\.description).joined(separator: ", ") }

    /// A line in the mount's log (its standard error) for what a program only sees as an errno.
    static func log(_ message: String) {
        FileHandle.standardError.write(Data("silo: \(message)\n".utf8))
    }

    /// A shared mount's file written through `handle` is committed when it is closed or synced, so
    /// that the next open anywhere sees it whole.
    func publishFile(_ inode: Inode, handle: UInt64) async throws {
        guard kind == .shared, handle != 0, let overlay, overlay.isWriting(handle) else { return }
        let path = try inodes.path(of: inode)
        try await publish([path], conflict: SiloError(.io, "\(path) could not be committed"))
    }

    /// Whether a change to `path`'s attributes waits for the close of the descriptors writing it:
    /// committed now, it would carry their bytes half written.
    func isBeingWritten(_ path: VolumePath) -> Bool {
        guard kind == .shared, let overlay, let local = overlay.localFile(at: path) else { return false }
        return overlay.hasWriters(local)
    }

    /// A FLUSH (every `close` of a descriptor): a shared mount commits what was written through it.
    public func flush(_ inode: Inode, handle: UInt64) async throws {
        try await publishFile(inode, handle: handle)
    }
}
