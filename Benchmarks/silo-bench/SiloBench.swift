import ArgumentParser
import Foundation
import Logging
import SiloClient
import SiloCore
import SiloStore

/// Measures the store's cost model on this machine. Figures are best-of-N wall times with same-run
/// baselines, because this machine's timings swing from run to run.
@main
struct SiloBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "silo-bench",
        abstract: "Benchmarks of the embedded store.",
        subcommands: [CommitCost.self, PutSmallFiles.self, Hashing.self]
    )
}

func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func scratch(_ label: String) throws -> String {
    let base = ProcessInfo.processInfo.environment["SILO_BENCH_DIR"] ?? NSTemporaryDirectory()
    let path = base + "/silo-bench-\(label)-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func openStore(_ home: String) async throws -> EmbeddedVolumeService {
    try await EmbeddedVolumeService.open(home: home, author: "bench", logger: Logger(label: "bench"))
}

/// Commit time for a one-file change as the volume grows: it should not grow with the volume.
struct CommitCost: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "commit")

    @Option(help: "Volume sizes in files, comma-separated.")
    var files = "1000,100000,1000000"

    @Option(help: "One-file commits timed per size; the best is reported.")
    var repeats = 20

    func run() async throws {
        let sizes = files.split(separator: ",").compactMap { Int($0) }
        print("one-file commit in a volume of N files (best of \(repeats); ratio to the smallest volume)")
        print("files      fill(s)   commit best(ms)  median(ms)  ratio")
        var baseline: Double?
        for size in sizes {
            let home = try scratch("commit")
            defer { try? FileManager.default.removeItem(atPath: home) }
            let service = try await openStore(home)
            let name = try VolumeName("bench")
            _ = try await service.createVolume(name)
            let fill = try await seconds {
                var start = 0
                while start < size {
                    let end = min(start + 50_000, size)
                    var changes: [Change] = []
                    changes.reserveCapacity(end - start)
                    for index in start..<end {
                        let bytes = Array("file \(index)".utf8)
                        changes.append(.put(
                            try VolumePath("d\(index / 1000)/f\(index)"),
                            FilePut(content: .inline(bytes), size: Int64(bytes.count), mtimeNanoseconds: 0)
                        ))
                    }
                    _ = try await service.commit(Changeset(changes), to: name, options: CommitOptions(author: "bench"))
                    start = end
                }
            }
            var times: [Double] = []
            for round in 0..<repeats {
                let index = (round * 7919) % size
                let bytes = Array("changed \(round)".utf8)
                times.append(try await seconds {
                    _ = try await service.commit(Changeset([
                        .put(try VolumePath("d\(index / 1000)/f\(index)"), FilePut(content: .inline(bytes), size: Int64(bytes.count), mtimeNanoseconds: 0)),
                    ]), to: name, options: CommitOptions(author: "bench"))
                })
            }
            try await service.close()
            times.sort()
            let best = times[0] * 1000
            baseline = baseline ?? best
            print(
                String(format: "%-9d  %7.1f   %15.2f  %10.2f  %5.2f", size, fill, best, times[times.count / 2] * 1000, best / baseline!)
            )
        }
    }
}

/// `put` of a directory of small files, against `cp -r` of the same directory on the same disk.
struct PutSmallFiles: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "put")

    @Option(help: "Number of files.")
    var files = 10_000

    @Option(help: "Bytes per file.")
    var size = 1024

    @Option(help: "Runs per tool; the best is reported.")
    var repeats = 3

    func run() async throws {
        let work = try scratch("put")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let source = work + "/source"
        for index in 0..<files {
            let directory = source + "/d\(index / 1000)"
            if index % 1000 == 0 { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
            _ = FileManager.default.createFile(atPath: directory + "/f\(index)", contents: Data(bytes))
        }
        var copyBest = Double.infinity
        var putBest = Double.infinity
        for round in 0..<repeats {
            let copy = try await seconds {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/bin/sh")
                process.arguments = ["-c", "cp -r '\(source)' '\(work)/copy\(round)' && sync -f '\(work)/copy\(round)'"]
                try process.run()
                process.waitUntilExit()
            }
            copyBest = min(copyBest, copy)
            let home = work + "/home\(round)"
            let service = try await openStore(home)
            let name = try VolumeName("bench")
            _ = try await service.createVolume(name)
            let put = try await seconds {
                _ = try await Uploader(service: service).put(
                    local: source, to: try VolumePath("source"), in: name, force: false, options: CommitOptions(author: "bench")
                )
            }
            try await service.close()
            putBest = min(putBest, put)
        }
        print("put of \(files) files of \(size) B (best of \(repeats))")
        print(String(format: "cp -r + sync   %7.3f s", copyBest))
        print(String(format: "silo put       %7.3f s   (%.2f× cp)   %.0f files/s", putBest, putBest / copyBest, Double(files) / putBest))
    }
}

/// SHA-256 throughput of the hasher silo uses, over one reused buffer.
struct Hashing: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hash")

    @Option(help: "MiB hashed per run.")
    var mebibytes = 512

    func run() async throws {
        let block = [UInt8](repeating: 0x5A, count: BlockLayout.defaultBlockSize)
        let hasher = SHA256Hasher()
        var best = Double.infinity
        for _ in 0..<5 {
            best = min(best, await seconds {
                for _ in 0..<(mebibytes / 8) { hasher.update(block) }
                _ = hasher.finalize()
            })
        }
        print(String(format: "SHA-256 (libcrypto), 8 MiB blocks: %.2f GB/s (best of 5)", Double(mebibytes) * 1_048_576 / best / 1e9))
    }
}
