import ArgumentParser
import Foundation
import SiloCore

/// The CLI's one table from error codes to exit statuses, and the one place errors are printed.
///
/// 0 success · 1 other failure · 2 bad input (name, path, argument, wrong kind of path) · 3 not found ·
/// 4 already exists, conflict or locked · 5 damaged or missing data, database errors · 6 out of space ·
/// 7 not allowed (missing, wrong or revoked token) · 8 server unavailable (down, shutting down, busy) ·
/// 64 usage (from the argument parser).
enum ExitStatus {
    static func code(for error: SiloError) -> Int32 {
        switch error.code {
        case .invalidName, .invalidPath, .invalidArgument, .invalidRange, .tooLarge, .notADirectory, .isADirectory, .directoryNotEmpty, .localFile,
            .notPermitted:
            2
        case .volumeNotFound, .versionNotFound, .pathNotFound, .notFound:
            3
        case .volumeExists, .pathExists, .conflict, .locked, .leaseLapsed:
            4
        case .corruptBlock, .missingBlock, .storage:
            5
        case .noSpace:
            6
        case .unauthorized, .forbidden:
            7
        case .unavailable, .tooManyRequests:
            8
        default:
            1
        }
    }

    /// Prints `error` as one line on standard error and returns the exit to throw.
    static func fail(_ error: any Error) -> any Error {
        if error is ExitCode || error is CleanExit { return error }
        let siloError = error as? SiloError ?? SiloError(.io, "\(error)")
        FileHandle.standardError.write(Data("silo: error: \(siloError.message)\n".utf8))
        return ExitCode(code(for: siloError))
    }
}
