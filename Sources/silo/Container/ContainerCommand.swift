import CSiloSystem
import ArgumentParser
import Foundation
import SiloCore
import SiloRuntime
import SiloFUSE

#if canImport(Glibc)
import Glibc
#endif

struct ContainerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "container",
        abstract: "Long-lived containers: start one with volumes attached, run commands in it, stop it.",
        discussion: """
            A container keeps its mounts, and so its view of each volume, from start to stop: commands \
            run in it with `exec` see what earlier ones wrote, and others' commits only after a reload, \
            as reused function containers do.
            """,
        subcommands: [ContainerStart.self, ContainerExec.self, ContainerStop.self, ContainerList.self, ContainerSupervise.self]
    )
}

struct ContainerStart: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Start a container with volumes attached; prints its id.",
        discussion: "Takes the -v, --background-commits and --env options of `silo run`. The container runs until `silo container stop ID`."
    )

    @OptionGroup var options: ContainerOptions

    func run() throws {
        let id = ContainerRecord.newID()
        do {
            _ = try options.attachments()
            try ContainerLaunch.checkRoot()
            let logs = try SiloEnvironment.privateHome() + "/logs"
            try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
            let log = "\(logs)/container-\(id).log"
            // Moved above the descriptors the supervisor gets them as (3, 4…), so none is in another's way.
            let held = try ContainerLaunch.joinMachineMounts(options).map { fd in
                defer { close(fd) }
                return fcntl(fd, F_DUPFD_CLOEXEC, 64)
            }
            defer { for fd in held { close(fd) } }
            // The supervisor gets the held descriptors as 3, 4…
            let kept = held.indices.map { Int32(3 + $0) }
            let line = try Self.spawnDetached(
                try ContainerLaunch.arguments(id: id, options: options, keep: true, held: kept, command: []), log: log, keeping: held)
            guard line.hasPrefix("started \(id)") else {
                let reason = (try? String(contentsOfFile: log, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                FileHandle.standardError.write(Data("\(reason.isEmpty ? "silo: error: the container did not start; see \(log)" : reason)\n".utf8))
                throw ExitCode(1)
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw ExitStatus.fail(error)
        }
        Output.line(id)
    }

    /// Starts `arguments` in a session of its own (no terminal can hang it up), standard error to
    /// `log`, descriptors `keeping` open in it as 3, 4…, and returns the first line it writes to
    /// standard output ("" if it exits first).
    static func spawnDetached(_ arguments: [String], log: String, keeping: [Int32] = []) throws -> String {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw SiloError(.io, "pipe: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, ends[1], STDOUT_FILENO)
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        for (index, fd) in keeping.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, Int32(3 + index)) }
        _ = silo_spawn_close_from(&actions, Int32(3 + keeping.count))
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, silo_spawn_setsid_flag())
        let pointers = CStringArray(arguments)
        var pid: pid_t = 0
        let status = pointers.withPointers { posix_spawn(&pid, arguments[0], &actions, &attributes, $0, environ) }
        close(ends[1])
        defer { close(ends[0]) }
        guard status == 0 else { throw SiloError(.io, "cannot start \(arguments[0]): \(String(cString: strerror(status)))") }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while read(ends[0], &byte, 1) == 1, byte != 0x0A { line.append(byte) }
        return String(decoding: line, as: UTF8.self)
    }
}

struct ContainerExec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command inside a running container.",
        discussion: "The command sees the container's mounts as the container sees them; stdio, signals and the exit status pass through."
    )

    @Argument(help: "The container's id (or a unique prefix).")
    var id: String

    @Option(name: .customLong("env"), help: "K=V added to the container's environment (repeatable).")
    var environment: [String] = []

    @Option(help: "The directory to start in (default: the container's).")
    var workdir: String?

    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the command to run after --, e.g. silo container exec ID -- ls /data") }
        for pair in environment where !pair.contains("=") || pair.hasPrefix("=") { throw ValidationError("--env \(pair): write KEY=VALUE") }
    }

    func run() throws {
        do {
            try ContainerLaunch.checkRoot()
            let record = try SiloEnvironment.containers.find(id)
            // util-linux's nsenter joins the container's mount namespace; coreutils' env then enters
            // the working directory there (a directory opened before joining would be the host's).
            let nsenter = try ContainerLaunch.tool("nsenter")
            let enter = [nsenter, "--target", "\(record.pid)", "--mount", "--"]
            let arguments = enter + [try ContainerLaunch.tool("env"), "--chdir=\(workdir ?? record.workdir)", "--"] + command
            let pairs = CStringArray(
                environment: Container.environment(
                    record.environment + environment, binary: ContainerLaunch.binary, home: SiloEnvironment.home, attached: record.attachments)
            )
            _ = CStringArray(arguments).withPointers { argv in pairs.withPointers { envp in execve(nsenter, argv, envp) } }
            throw SiloError(.io, "cannot start \(nsenter): \(String(cString: strerror(errno)))")
        } catch {
            throw ExitStatus.fail(error)
        }
    }
}

struct ContainerStop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Stop a container: final background commits, or say what is discarded.",
        discussion: "Returns once the container's mounts are gone."
    )

    @Argument(help: "The container's id (or a unique prefix).")
    var id: String

    func run() throws {
        do {
            let record = try SiloEnvironment.containers.find(id)
            guard kill(record.pid, SIGTERM) == 0 else {
                throw SiloError(.io, "cannot signal container \(record.id) (pid \(record.pid)): \(String(cString: strerror(errno)))")
            }
            SiloEnvironment.containers.waitForExit(record.id)
            let ending = (try? String(contentsOfFile: SiloEnvironment.containers.endingPath(record.id), encoding: .utf8)) ?? ""
            SiloEnvironment.containers.remove(record.id)
            for line in ending.split(separator: "\n") { Output.note("silo: \(line)") }
            Output.note("stopped \(record.id)")
        } catch {
            throw ExitStatus.fail(error)
        }
    }
}

struct ContainerList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List running containers.")

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    struct Row: Encodable {
        var id: String
        var pid: Int32
        var volumes: [String]
        var ageSeconds: Int
        /// Changed paths not yet committed, over all its volumes.
        var uncommittedPaths: Int
    }

    func run() throws {
        let now = Date().timeIntervalSince1970
        let rows = SiloEnvironment.containers.all().map { record in
            Row(
                id: record.id, pid: record.pid,
                volumes: record.attachments.map { "\($0.ephemeral ? "" : $0.volume):\($0.path)\($0.readOnly ? ":ro" : "")" },
                ageSeconds: Int(now - record.created),
                uncommittedPaths: record.attachments.reduce(0) { total, attached in
                    total + ((try? MountControl.send(.status, to: attached.socket))?.changedPaths ?? 0)
                }
            )
        }
        if json {
            do { try Output.json(rows) } catch { throw ExitStatus.fail(error) }
            return
        }
        Output.table(
            ["ID", "VOLUMES", "AGE", "UNCOMMITTED"],
            rows.map { [$0.id, $0.volumes.joined(separator: " "), "\($0.ageSeconds)s", "\($0.uncommittedPaths)"] })
    }
}
