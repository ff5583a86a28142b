import ArgumentParser
import Foundation
import SiloClient
import SiloCore

struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Look after the machine's content cache ($SILO_CACHE, default $SILO_HOME/cache).",
        subcommands: [Verify.self]
    )

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read every cached block and whole-file copy and drop those whose bytes no longer match their hash.",
            discussion: """
                Mounts hand whole-file copies to the kernel, which reads them without Silo; a copy damaged on disk \
                would be read as it is. Mounts run this check once a day ($SILO_CACHE_SCRUB_HOURS); run it by hand \
                after a disk error. Dropped entries are fetched or assembled again when next read. Exits 5 when it \
                dropped anything.
                """
        )

        @Flag(help: "Print JSON instead of a sentence.")
        var json = false

        func run() throws {
            let report: ContentCache.ScrubReport
            do {
                report = try SiloEnvironment.contentCache().scrub()
            } catch {
                throw ExitStatus.fail(error)
            }
            if json {
                try Output.json(Summary(report))
            } else {
                Output.note(
                    "checked \(report.blocks) block(s) and \(report.files) whole-file copy(ies), \(Output.bytes(report.bytes)); "
                        + (report.dropped.isEmpty ? "all intact" : "dropped \(report.dropped.count) damaged: \(report.dropped.joined(separator: ", "))")
                )
            }
            if !report.dropped.isEmpty { throw ExitCode(ExitStatus.code(for: SiloError(.corruptBlock, ""))) }
        }
    }

    struct Summary: Encodable {
        var blocks: Int
        var files: Int
        var bytes: Int64
        var dropped: [String]
        init(_ report: ContentCache.ScrubReport) {
            blocks = report.blocks
            files = report.files
            bytes = report.bytes
            dropped = report.dropped
        }
    }
}
