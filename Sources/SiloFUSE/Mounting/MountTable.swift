import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Paths and the kernel's table of mounts, as the mount commands and the unmount guard need them.
public enum MountTable {
    /// The absolute path without symlinks, `.`, `..` or repeated slashes (the form the kernel lists
    /// mounts in); nil with `errno` set when the path does not resolve.
    public static func canonical(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Whether a Silo FUSE mount sits at `mountPoint` (a canonical path) in this mount namespace.
    public static func hasSiloMount(at mountPoint: String) -> Bool {
        siloMountDevice(at: mountPoint) != nil
    }

    /// The device (`major << 32 | minor`, as `/proc/self/mountinfo` lists it) of the Silo FUSE mount
    /// at `mountPoint` (a canonical path) in this mount namespace; the topmost if several are
    /// stacked. Read from the table, so nothing is asked of the mount itself.
    public static func siloMountDevice(at mountPoint: String) -> UInt64? {
        guard let table = readWhole("/proc/self/mountinfo") else { return nil }
        // Fields: id, parent id, major:minor, root, mount point (spaces as \040), options, optional
        // fields, "-", type, source, super options.
        let escaped = listed(mountPoint)
        var found: UInt64?
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 6, fields[4] == escaped, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count,
                fields[dash + 1] == "fuse.silo"
            else { continue }
            let numbers = fields[2].split(separator: ":").compactMap { UInt64($0) }
            guard numbers.count == 2 else { continue }
            found = numbers[0] << 32 | numbers[1]
        }
        return found
    }

    /// Whether any mount namespace on the machine has something mounted at `path` (a canonical
    /// path): one process of each namespace is asked, through its `/proc/PID/mountinfo`.
    public static func isMountPointInAnyNamespace(_ path: String) -> Bool {
        let escaped = listed(path)
        var seen: Set<String> = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where name.allSatisfy(\.isNumber) {
            guard let namespace = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(name)/ns/mnt"),
                seen.insert(namespace).inserted, let table = readWhole("/proc/\(name)/mountinfo")
            else { continue }
            if table.split(separator: "\n").contains(where: { line in
                let fields = line.split(separator: " ", maxSplits: 5)
                return fields.count > 4 && fields[4] == escaped
            }) {
                return true
            }
        }
        return false
    }

    /// `path` as the kernel's mount tables write it: spaces as `\040`, backslashes as `\134`.
    static func listed(_ path: String) -> String {
        path.replacingOccurrences(of: "\\", with: "\\134").replacingOccurrences(of: " ", with: "\\040")
    }

    /// A file read to its end, in pieces: /proc files report size 0 and may span many pages.
    static func readWhole(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
