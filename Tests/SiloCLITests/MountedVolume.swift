import Foundation
import SiloTesting

#if canImport(Glibc)
import Glibc
#endif

/// Volume `v` in a fresh SILO_HOME, with two empty directories to mount it at (`mountPoint`, and
/// `other` for a second mount); `close()` unmounts what was mounted and removes it all.
final class MountedVolume {
    let directory: TemporaryDirectory
    let silo: SiloBinary
    let mountPoint: String
    let other: String
    private var mounted: [String] = []

    /// With `openToOthers`, ordinary users may reach the mount points (the directory is 0755).
    init(_ label: String, openToOthers: Bool = false) throws {
        directory = try TemporaryDirectory(label)
        if openToOthers { chmod(directory.path, 0o755) }
        silo = SiloBinary(home: directory.file("home"))
        mountPoint = directory.file("mnt")
        other = directory.file("other")
        for point in [mountPoint, other] { try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true) }
        let created = try silo.run(["volume", "create", "v"])
        guard created.status == 0 else { throw CannotCreate(said: created.stderr) }
    }

    struct CannotCreate: Error {
        var said: String
    }

    /// Mounts the volume at `point` with `flags`; true if it mounted.
    func mount(at point: String, _ flags: String...) throws -> Bool {
        guard try silo.run(["mount", "v", point] + flags).status == 0 else { return false }
        mounted.append(point)
        return true
    }

    func close() {
        for point in mounted.reversed() { _ = try? silo.run(["umount", point]) }
        directory.remove()
    }
}
