import Foundation

/// Runs a program to its end and returns its exit status and what it printed (standard output and
/// error together), with `environment` on top of this process's.
public func runProgram(_ path: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let output = Pipe()
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, text)
}

/// Runs a Python program given as text (`python3 -c`) with `arguments` as its `sys.argv[1:]`.
public func runPython(_ program: String, _ arguments: [String] = []) throws -> (status: Int32, output: String) {
    try runProgram("/usr/bin/python3", ["-c", program] + arguments)
}

/// Runs a command as the user `nobody` (util-linux's setpriv, no supplementary groups).
public func runAsNobody(_ command: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    try runProgram("/usr/bin/setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] + command, environment: environment)
}

extension FileHandle {
    /// The next line read from this handle (a pipe from a child process), with its newline, or what
    /// came before the end.
    public func readLine() -> String {
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let more = availableData
            guard !more.isEmpty else { break }
            line += more
        }
        return String(decoding: line, as: UTF8.self)
    }
}
