import ArgumentParser
import Foundation
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// A mount's companion process: it waits on a pipe whose other end only the mount process holds, and
/// when that end closes (the mount process exited, however it died) it detaches the mount if it is
/// still there. A mount process killed with SIGKILL thus leaves no "transport endpoint is not
/// connected" behind. Not for direct use.
struct UnmountGuard: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unmount-guard", shouldDisplay: false)

    @Argument var mountPoint: String

    func run() throws {
        var byte: UInt8 = 0
        // Nothing is ever written: read returns 0 when the mount process's end closes.
        while true {
            let count = read(STDIN_FILENO, &byte, 1)
            if count == 0 || (count < 0 && errno != EINTR) { break }
        }
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        let escaped = mountPoint.replacingOccurrences(of: " ", with: "\\040")
        if mounts.split(separator: "\n").contains(where: { $0.split(separator: " ").dropFirst().first.map(String.init) == escaped && $0.contains(" fuse.silo ") }) {
            _ = umount2(mountPoint, Int32(MNT_DETACH))
        }
    }

    /// Starts a guard for the mount at `mountPoint`; keep the returned descriptor open for as long as
    /// the mount should live (it closes by itself when this process ends).
    static func start(for mountPoint: String) throws -> Int32 {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw FUSEError(errno) }
        _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        child.arguments = ["unmount-guard", mountPoint]
        child.standardInput = FileHandle(fileDescriptor: ends[0], closeOnDealloc: true)
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        return ends[1]
    }
}
