import Foundation
import Logging
import Synchronization
import SiloClient
import SiloCore
import SiloStore

/// The metadata backends every store test runs against.
public enum Backend: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite

    public var description: String { rawValue }
}

/// An embedded store in a temporary directory, opened on one backend.
public final class StoreFixture: Sendable {
    public let directory: TemporaryDirectory
    public let backend: Backend
    public let service: EmbeddedVolumeService
    private let opened = Mutex<[EmbeddedVolumeService]>([])

    init(directory: TemporaryDirectory, backend: Backend, service: EmbeddedVolumeService) {
        self.directory = directory
        self.backend = backend
        self.service = service
    }

    /// Runs `body` with a fresh store and always closes every connection and removes the directory.
    public static func with<R>(_ backend: Backend, _ body: (StoreFixture) async throws -> R) async throws -> R {
        let fixture = try await make(backend)
        do {
            let result = try await body(fixture)
            await fixture.tearDown()
            return result
        } catch {
            await fixture.tearDown()
            throw error
        }
    }

    public var home: String { directory.path + "/home" }
    public var store: VolumeStore { service.store }

    public static func make(_ backend: Backend, author: String = "test") async throws -> StoreFixture {
        let directory = try TemporaryDirectory("silo-store")
        return StoreFixture(directory: directory, backend: backend, service: try await open(backend, home: directory.path + "/home", author: author))
    }

    /// Another connection to the same store, as a second process would have.
    public func reopen(author: String = "test") async throws -> EmbeddedVolumeService {
        let service = try await Self.open(backend, home: home, author: author)
        opened.withLock { $0.append(service) }
        return service
    }

    static func open(_ backend: Backend, home: String, author: String) async throws -> EmbeddedVolumeService {
        switch backend {
        case .sqlite:
            try await EmbeddedVolumeService.open(home: home, author: author, logger: Logger(label: "silo-test"))
        }
    }

    public func tearDown() async {
        for other in opened.withLock({ $0 }) { try? await other.close() }
        try? await service.close()
        directory.remove()
    }

    /// Flips a byte in the middle of a stored block's file, as a failing disk would.
    public func damageBlock(_ hash: BlockHash) throws {
        let file = home + "/blocks/" + EmbeddedVolumeService.workspace + "/" + hash.hex.prefix(2) + "/" + hash.hex
        chmod(file, 0o600)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        bytes[bytes.count / 2] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: file))
    }

    /// Block files on disk for the embedded workspace.
    public func blockFiles() -> [String] {
        let root = home + "/blocks/" + EmbeddedVolumeService.workspace
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
        return enumerator.compactMap { $0 as? String }.filter { $0.count > 3 }.map { root + "/" + $0 }
    }
}

extension VolumeService {
    /// Puts small files given as text, with no preconditions, in one commit.
    @discardableResult
    public func put(_ files: [String: String], in volume: VolumeName, author: String = "test", commitID: String? = nil) async throws -> CommitResult {
        let changes: [Change] = try files.sorted { $0.key < $1.key }.map { path, text in
            .put(try VolumePath(path), FilePut(content: .inline(Array(text.utf8)), size: Int64(text.utf8.count), mtimeNanoseconds: 0))
        }
        return try await commit(Changeset(changes), to: volume, options: CommitOptions(author: author, commitID: commitID))
    }

    /// Uploads `bytes` as blocks of `blockSize` and returns the file's content.
    public func uploadBlocks(_ bytes: [UInt8], blockSize: Int) async throws -> FileContent {
        var hashes: [BlockHash] = []
        var start = 0
        while start < bytes.count {
            let block = Block(bytes: Array(bytes[start..<min(start + blockSize, bytes.count)]))
            try await uploadBlock(block)
            hashes.append(block.hash)
            start += blockSize
        }
        return .blocks(hashes, blockSize: blockSize)
    }

    public func text(_ path: String, in volume: VolumeName, version: Version? = nil) async throws -> String? {
        let path = try VolumePath(path)
        guard try await entry(at: path, in: volume, version: version) != nil else { return nil }
        return String(decoding: try await read(path, in: volume, version: version), as: UTF8.self)
    }
}
