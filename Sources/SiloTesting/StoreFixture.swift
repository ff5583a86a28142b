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

/// How a test reaches the store: in this process, or through a real `silo serve` over HTTP.
public enum StoreAccess: String, CaseIterable, Sendable {
    /// The embedded service, as the CLI uses it with no server configured.
    case embedded
    /// The remote service talking to `silo serve` (the built binary) over loopback, as a client on
    /// another machine would: every rule the store keeps must hold there too.
    case server
}

/// A store to test: a metadata backend, reached one way. ``all`` is every combination, so a rule test
/// parameterised over it proves the rule on every backend, embedded and through the server alike.
public struct StoreSetup: Sendable, CustomStringConvertible {
    public var backend: Backend
    public var access: StoreAccess

    public init(_ backend: Backend, _ access: StoreAccess) {
        self.backend = backend
        self.access = access
    }

    public static var all: [StoreSetup] {
        Backend.allCases.flatMap { backend in StoreAccess.allCases.map { StoreSetup(backend, $0) } }
    }

    public var description: String { "\(backend) \(access)" }
}

/// A store in a temporary directory, opened on one backend and reached one way.
public final class StoreFixture: Sendable {
    public let directory: TemporaryDirectory
    public let setup: StoreSetup
    public let service: any VolumeService
    /// The server the service talks to, for setups through a server.
    public let server: SiloServerProcess?
    private let opened = Mutex<[any VolumeService]>([])

    init(directory: TemporaryDirectory, setup: StoreSetup, service: any VolumeService, server: SiloServerProcess?) {
        self.directory = directory
        self.setup = setup
        self.service = service
        self.server = server
    }

    /// Runs `body` with a fresh store and always closes every connection and removes the directory.
    public static func with<R>(_ setup: StoreSetup, _ body: (StoreFixture) async throws -> R) async throws -> R {
        let fixture = try await make(setup)
        do {
            let result = try await body(fixture)
            await fixture.tearDown()
            return result
        } catch {
            await fixture.tearDown()
            throw error
        }
    }

    /// ``with(_:_:)`` on the embedded store of `backend`.
    public static func with<R>(_ backend: Backend, _ body: (StoreFixture) async throws -> R) async throws -> R {
        try await with(StoreSetup(backend, .embedded), body)
    }

    /// Where the store's files are: the embedded store's home, or the server's data directory (its
    /// admin token's workspace is the embedded one's, `default`, so blocks lie at the same paths).
    public var home: String { directory.path + "/home" }

    public static func make(_ setup: StoreSetup, author: String = "test") async throws -> StoreFixture {
        let directory = try TemporaryDirectory("silo-store")
        let home = directory.path + "/home"
        switch setup.access {
        case .embedded:
            return StoreFixture(directory: directory, setup: setup, service: try await openEmbedded(setup.backend, home: home, author: author), server: nil)
        case .server:
            let server = try await SiloServerProcess.launch(dataDirectory: home)
            return StoreFixture(directory: directory, setup: setup, service: try remote(server, author: author), server: server)
        }
    }

    public static func make(_ backend: Backend, author: String = "test") async throws -> StoreFixture {
        try await make(StoreSetup(backend, .embedded), author: author)
    }

    /// Another connection to the same store, as a second process (or machine) would have.
    public func reopen(author: String = "test") async throws -> any VolumeService {
        let service: any VolumeService
        if let server {
            service = try Self.remote(server, author: author)
        } else {
            service = try await Self.openEmbedded(setup.backend, home: home, author: author)
        }
        opened.withLock { $0.append(service) }
        return service
    }

    static func openEmbedded(_ backend: Backend, home: String, author: String) async throws -> EmbeddedVolumeService {
        switch backend {
        case .sqlite:
            try await EmbeddedVolumeService.open(home: home, author: author, logger: Logger(label: "silo-test"))
        }
    }

    static func remote(_ server: SiloServerProcess, author: String) throws -> RemoteVolumeService {
        try RemoteVolumeService(url: server.url, token: server.adminToken, author: author)
    }

    public func tearDown() async {
        for other in opened.withLock({ $0 }) { try? await other.close() }
        try? await service.close()
        if let server { await server.stopped() }
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
