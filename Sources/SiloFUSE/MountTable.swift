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
        guard let table = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return false }
        // Fields: source, mount point (spaces as \040), type, options, …
        let escaped = mountPoint.replacingOccurrences(of: "\\", with: "\\134").replacingOccurrences(of: " ", with: "\\040")
        return table.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ", maxSplits: 3)
            return fields.count > 2 && fields[1] == escaped && fields[2] == "fuse.silo"
        }
    }
}
