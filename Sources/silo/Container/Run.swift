import ArgumentParser
import Foundation
import SiloCore
import SiloRuntime
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command in a container with volumes attached at paths (needs root).",
        discussion: """
            The command runs in a mount namespace of its own, where each -v volume is mounted at its \
            path (created if missing); nothing outside the container sees those mounts. A volume name \
            that does not exist is created (unless --no-create); -v :/path attaches a new ephemeral \
            volume, deleted when the run ends. Inside, `silo volume commit /path` and `silo volume \
            reload /path` act on the attached volumes. Standard input and output, signals and the exit \
            status pass through. At the end, volumes with --background-commits get a final commit; \
            other uncommitted changes are discarded, and silo says how many on standard error.

            Example: silo run -v models:/vol/models -- python3 train.py
            """
    )

    @OptionGroup var options: ContainerOptions

    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the command to run after --, e.g. silo run -v data:/data -- ls /data") }
    }

    func run() throws {
        do {
            _ = try options.attachments()
            try ContainerLaunch.exec(id: ContainerRecord.newID(), options: options, keep: false, command: command)
        } catch {
            throw ExitStatus.fail(error)
        }
    }
}

/// Starting a container's supervisor in a mount namespace of its own.
enum ContainerLaunch {
    /// The system tool `name` (util-linux's `unshare` and `nsenter`, coreutils' `env`).
    static func tool(_ name: String) throws(SiloError) -> String {
        for directory in ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] where access("\(directory)/\(name)", X_OK) == 0 {
            return "\(directory)/\(name)"
        }
        throw SiloError(.notFound, "containers need the system's \(name) (Debian: apt-get install util-linux coreutils)")
    }

    static func checkRoot() throws(SiloError) {
        guard geteuid() == 0 else {
            throw SiloError(.forbidden, "containers need root (a mount namespace and FUSE mounts); run silo as root")
        }
    }

    /// This binary's path, which stays valid across exec.
    static var binary: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// The supervisor's command line, `unshare` first; `held` are descriptors it keeps open.
    static func arguments(id: String, options: ContainerOptions, keep: Bool, held: [Int32] = [], command: [String]) throws(SiloError) -> [String] {
        // util-linux's unshare makes the namespace: a multi-threaded process cannot unshare its own.
        [try tool("unshare"), "--mount", "--propagation", "private", "--", binary, "container", "supervise", "--id", id]
            + (keep ? ["--keep"] : []) + held.flatMap { ["--hold", "\($0)"] } + options.arguments + ["--"] + command
    }

    /// Replaces this process with the supervisor, which runs `command` in the container; its exit
    /// status becomes this command's. Named shared volumes are mounted once for the machine first,
    /// here, where the container's namespace will see them (``MachineMount``).
    static func exec(id: String, options: ContainerOptions, keep: Bool, command: [String]) throws {
        try checkRoot()
        let held = try joinMachineMounts(options)
        let arguments = try arguments(id: id, options: options, keep: keep, held: held, command: command)
        _ = CStringArray(arguments).withPointers { execv(arguments[0], $0) }
        throw SiloError(.io, "cannot start \(arguments[0]): \(String(cString: strerror(errno)))")
    }

    /// Joins (making them if needed) the machine mounts of the named shared volumes `options` attach,
    /// and returns the descriptors that hold the container's places on them (``MachineMount/join``).
    static func joinMachineMounts(_ options: ContainerOptions) throws -> [Int32] {
        var held: [Int32] = []
        do {
            for attachment in try options.attachments() where attachment.kind == .shared {
                guard let volume = attachment.volume else { continue }  // an ephemeral one is this container's alone
                let name = try VolumeName(volume)
                held.append(try MachineMount.join(home: try SiloEnvironment.privateHome(), volume: name) { point, users in
                    try startMachineMount(name, at: point, users: users, options: options)
                })
            }
        } catch {
            for fd in held { close(fd) }
            throw error
        }
        return held
    }

    /// Starts `silo mount` of shared volume `name` at `point` in the background, unmounting itself once
    /// no container holds `users`; made shared if missing unless the options say not to create. A mount
    /// that fails has said why on standard error, and its exit status is thrown.
    private static func startMachineMount(_ name: VolumeName, at point: String, users: String, options: ContainerOptions) throws {
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: binary)
        mount.arguments = ["mount", name.rawValue, point, "--until-unused", users] + (options.noCreate ? ["--no-create"] : [])
            + (options.xattrs ? ["--xattrs"] : [])
        let (output, errors) = (Pipe(), Pipe())
        mount.standardOutput = output
        mount.standardError = errors
        mount.standardInput = FileHandle.nullDevice
        try mount.run()
        _ = output.fileHandleForReading.readDataToEndOfFile()
        let said = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        mount.waitUntilExit()
        guard mount.terminationStatus == 0 else {
            // The mount said why, as this command would have; its exit status is this one's.
            let reason = said.trimmingCharacters(in: .whitespacesAndNewlines)
            FileHandle.standardError.write(Data("\(reason.isEmpty ? "silo: error: the mount of '\(name)' did not start" : reason)\n".utf8))
            throw ExitCode(mount.terminationStatus)
        }
    }
}
