import Foundation

/// Runs the built `silo` executable, as a user would, against a chosen `SILO_HOME`.
public struct SiloBinary: Sendable {
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var stdoutBytes: [UInt8]
    }

    public let home: String
    /// Set on top of this process's environment for every run: `SILO_SERVER` and `SILO_TOKEN`, say.
    public var environment: [String: String]

    public init(home: String, environment: [String: String] = [:]) {
        self.home = home
        self.environment = environment
    }

    /// The same binary against a server: every command uses it instead of the embedded store.
    public func using(_ server: SiloServerProcess, token: String? = nil) -> SiloBinary {
        SiloBinary(home: home, environment: ["SILO_SERVER": server.url, "SILO_TOKEN": token ?? server.adminToken])
    }

    /// The `silo` built beside the test bundle, or `$SILO_BINARY`.
    public static var path: String {
        if let path = ProcessInfo.processInfo.environment["SILO_BINARY"] { return path }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("silo").path
    }

    /// Starts `silo ARGS` without waiting; for tests that signal or race processes. Standard error
    /// goes to the file `stderr` when one is named.
    public func start(_ arguments: [String], in directory: String? = nil, stderr: String? = nil) throws -> Process {
        let process = prepare(arguments, in: directory)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        if let stderr {
            _ = FileManager.default.createFile(atPath: stderr, contents: nil)
            process.standardError = FileHandle(forWritingAtPath: stderr)
        }
        try process.run()
        return process
    }

    /// Starts `silo ARGS` with pipes for its standard input and output, returned with it to write
    /// and read; standard error goes to the file `stderr`.
    public func startPiped(_ arguments: [String], stderr: String) throws -> (process: Process, input: FileHandle, output: FileHandle) {
        let process = prepare(arguments, in: nil)
        let (input, output) = (Pipe(), Pipe())
        process.standardInput = input
        process.standardOutput = output
        _ = FileManager.default.createFile(atPath: stderr, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: stderr)
        try process.run()
        return (process, input.fileHandleForWriting, output.fileHandleForReading)
    }

    /// Starts `silo ARGS` and returns once it has printed its first line on stdout (servers and mounts
    /// print one when they are ready: reading it is the synchronisation), with that line. Standard
    /// error goes to `log`.
    public func startReadingFirstLine(_ arguments: [String], log: String) throws -> (Process, String) {
        let process = prepare(arguments, in: nil)
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        var line = Data()
        let reader = out.fileHandleForReading
        while true {
            let byte = reader.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        return (process, String(decoding: line, as: UTF8.self))
    }

    /// Runs `silo ARGS` to completion and captures its output; `input` is its standard input.
    @discardableResult
    public func run(_ arguments: [String], in directory: String? = nil, input: Data? = nil) throws -> Output {
        let process = prepare(arguments, in: directory)
        let out = Pipe()
        let err = Pipe()
        let stdin = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        process.standardOutput = out
        process.standardError = err
        try process.run()
        if let input {
            try stdin.fileHandleForWriting.write(contentsOf: input)
            try stdin.fileHandleForWriting.close()
        }
        // Read both pipes to the end before waiting, so a chatty child never blocks on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Output(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self),
            stdoutBytes: [UInt8](outData)
        )
    }

    private func prepare(_ arguments: [String], in directory: String?) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.path)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["SILO_HOME"] = home
        environment.removeValue(forKey: "SILO_SERVER")
        environment.removeValue(forKey: "SILO_TOKEN")
        environment.merge(self.environment) { $1 }
        process.environment = environment
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        return process
    }
}
