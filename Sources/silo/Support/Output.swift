import Foundation
import SiloClient
import SiloCore
import SiloWire

enum Output {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func json<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        FileHandle.standardOutput.write(try encoder.encode(value))
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    static func bytes(_ count: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }

    static func time(milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    /// Left-aligned columns separated by two spaces.
    static func table(_ header: [String], _ rows: [[String]]) {
        let all = [header] + rows
        var widths = Array(repeating: 0, count: header.count)
        for row in all { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        for row in all {
            let cells = row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }
            line(cells.joined(separator: "  "))
        }
    }
}

/// Shows transfer progress on standard error when it is a terminal, at most ten times a second.
final class ProgressLine: @unchecked Sendable {
    private let verb: String
    private let lock = NSLock()
    private var lastDraw = Date.distantPast
    private var drawn = false
    private let enabled = isatty(STDERR_FILENO) != 0

    init(verb: String) {
        self.verb = verb
    }

    var handler: TransferProgress.Handler? {
        guard enabled else { return nil }
        return { [self] progress in update(progress) }
    }

    private func update(_ progress: TransferProgress) {
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= 0.1 || progress.bytesDone == progress.bytesTotal else { return }
        lastDraw = now
        drawn = true
        let percent = progress.bytesTotal > 0 ? Int(progress.bytesDone * 100 / progress.bytesTotal) : 100
        let files = progress.filesTotal > 1 ? ", \(progress.filesDone)/\(progress.filesTotal) files" : ""
        FileHandle.standardError.write(Data(
            "\r\u{1B}[K\(verb) \(Output.bytes(progress.bytesDone)) / \(Output.bytes(progress.bytesTotal)) (\(percent)%\(files))".utf8
        ))
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

extension EntryKind {
    var symbol: String {
        switch self {
        case .file: "file"
        case .directory: "dir"
        case .symlink: "link"
        case .fifo: "fifo"
        case .socket: "sock"
        case .characterDevice: "chr"
        case .blockDevice: "blk"
        }
    }
}
