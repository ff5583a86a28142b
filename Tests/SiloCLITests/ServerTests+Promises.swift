import Foundation
import SiloClient
import SiloCore
import SiloTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What the README promises of a running `silo serve` under pressure: a graceful stop, the per-token
/// upload limit with the client's backoff, and `put`'s second look inside the commit.
///
/// The waiting here is blocking, on raw connections and threads of its own: in a full parallel run
/// the cooperative pool is often busy with other suites, and a wait that needs it would time out.
extension ServerTests {
    struct TimedOut: Error, CustomStringConvertible {
        let what: String
        var description: String { "timed out waiting until \(what)" }
    }

    /// Polls until `condition` holds, or throws after `seconds`: synchronisation on state the server
    /// shows, not on time.
    ///
    /// It gives its thread back between polls: a test that blocked a thread of the cooperative pool
    /// here would starve the very tasks it waits for (a retrying client, say) on a two-core machine.
    static func waitUntil(_ what: String, seconds: TimeInterval = 60, _ condition: () throws -> Bool) async throws {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while try !condition() {
            guard Date() < deadline else { throw TimedOut(what: what) }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The sum of the samples of `metric` in the server's /metrics whose labels contain every one of
    /// `labels` (nil when there is none yet).
    static func metric(_ metric: String, labels: [String] = [], at url: String) throws -> Double? {
        let text = try rawHTTPRequest("GET", url, "/metrics").body
        let samples = text.split(separator: "\n").filter {
            ($0.hasPrefix(metric + " ") || $0.hasPrefix(metric + "{")) && labels.allSatisfy($0.contains)
        }
        guard !samples.isEmpty else { return nil }
        return samples.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }

    @Test func sigtermLetsTheCommitInFlightLandAndAnswersNewOnes503() async throws {
        let setup = try Setup()
        let url = setup.server.url
        let token = setup.server.adminToken
        #expect(try setup.silo.run(["volume", "create", "v"]).status == 0)

        // A commit the server has begun (counted in flight) but whose body has not all arrived.
        let body = #"{"commitID": "in-flight", "author": "slow", "changes": [{"op": "put", "path": "landed", "size": 2, "mtimeNs": 0, "inline": "b2s="}]}"#
        let held = try HeldHTTPRequest("POST", url, "/v1/volumes/v/commits", token: token, body: Array(body.utf8))
        try await Self.waitUntil("the server counts the commit in flight") { try Self.metric("silo_commits_in_flight", at: url) == 1 }
        kill(setup.server.processIdentifier, SIGTERM)

        // Once the drain has begun, a new commit is refused with 503 and Retry-After. Until then the
        // same request is answered as a commit to a volume that does not exist, which changes nothing.
        let late = Array(#"{"commitID": "late", "changes": []}"#.utf8)
        var refused: RawHTTPAnswer?
        try await Self.waitUntil("new commits are refused") {
            refused = try rawHTTPRequest("POST", url, "/v1/volumes/absent/commits", token: token, body: late)
            return refused?.status != 404
        }
        #expect(refused?.status == 503, "\(refused?.head ?? "")")
        #expect(refused?.header("Retry-After") == "1")
        #expect(refused?.body.contains(#""code":"unavailable""#) == true)

        // The commit in flight finishes and is answered; then the server exits cleanly.
        let answer = try held.finish()
        #expect(answer.status == 201, "\(answer.head) \(answer.body)")
        #expect(answer.body.contains(#""version":1"#), "\(answer.body)")
        #expect(setup.server.stop() == 0, "\(setup.server.log)")

        try setup.server.start()
        let client = try setup.client()
        defer { Task { try? await client.close() } }
        let name = try VolumeName("v")
        let history = try await client.history(of: name)
        #expect(history.count == 2 && history.last?.author == "slow")
        #expect(try await client.text("landed", in: name) == "ok")
    }

    @Test func uploadsOverTheTokensLimitGet429AndTheClientRetriesUntilOneFinishes() async throws {
        let setup = try Setup(serverArguments: ["--uploads-per-token", "1"])
        let url = setup.server.url
        let token = setup.server.adminToken
        let first = Block(bytes: pseudoRandomBytes(count: 100_000, seed: 91))
        let second = Block(bytes: pseudoRandomBytes(count: 100_000, seed: 92))

        // One upload holds the token's only slot until the test sends its last byte.
        let held = try HeldHTTPRequest("PUT", url, "/v1/blocks/\(first.hash.hex)", token: token, body: first.bytes)
        try await Self.waitUntil("the first upload holds the slot") { try Self.metric("silo_block_uploads_in_flight", at: url) == 1 }
        let refused = try rawHTTPRequest("PUT", url, "/v1/blocks/\(second.hash.hex)", token: token, body: second.bytes)
        #expect(refused.status == 429, "\(refused.head) \(refused.body)")
        #expect(refused.header("Retry-After") == "1")
        #expect(refused.body.contains(#""code":"too_many_requests""#))

        // A client that may not retry gives up at once and says why.
        let impatient = try setup.client(retry: .init(attempts: 1))
        defer { Task { try? await impatient.close() } }
        let gaveUp = await #expect(throws: SiloError.self) { try await impatient.uploadBlock(second) }
        #expect(gaveUp?.code == .tooManyRequests)

        // The default client backs off and tries again: refused while the slot is held (the server has
        // answered one more upload), it succeeds once the held upload finishes.
        let uploads = (name: "hb_requests", labels: ["PUT", "blocks"])
        let answeredBefore = try Self.metric(uploads.name, labels: uploads.labels, at: url) ?? 0
        let patient = try setup.client()
        defer { Task { try? await patient.close() } }
        let retrying = Task { try await patient.uploadBlock(second) }
        try await Self.waitUntil("the retrying client has been refused", seconds: 120) {
            try Self.metric(uploads.name, labels: uploads.labels, at: url) ?? 0 > answeredBefore
        }
        #expect(try held.finish().status == 204)
        try await retrying.value
        #expect(try await patient.missingBlocks([first.hash, second.hash]).isEmpty)
    }

    /// `put` checks that its files are absent, uploads, and commits with "still absent" as the
    /// commit's precondition: a file another writer commits in between is not replaced.
    @Test func aFileCommittedBetweenPutsCheckAndItsCommitIsNotReplaced() async throws {
        let setup = try Setup()
        #expect(try setup.silo.run(["volume", "create", "v"]).status == 0)
        try setup.directory.write("mine.txt", "mine")
        // Between put and the server: the commit request waits in the proxy, so the put has looked
        // (and found nothing at /f.txt) before the other writer commits.
        let proxy = try HoldingProxy(upstream: setup.server.url, holdRequestTo: "/commits")
        defer { proxy.close() }
        let viaProxy = SiloBinary(home: setup.silo.home, environment: ["SILO_SERVER": proxy.url, "SILO_TOKEN": setup.server.adminToken])
        let put = try viaProxy.start(["volume", "put", "v", setup.directory.file("mine.txt"), "/f.txt"], stderr: setup.directory.file("put.log"))
        guard proxy.waitUntilHolding(seconds: 60) else {
            proxy.release()
            put.waitUntilExit()
            Issue.record("the put never sent its commit: status \(put.terminationStatus), \(String(decoding: try setup.directory.read("put.log"), as: UTF8.self))")
            return
        }

        let other = try setup.client()
        defer { Task { try? await other.close() } }
        try await other.put(["f.txt": "theirs"], in: try VolumeName("v"), author: "other")
        proxy.release()

        put.waitUntilExit()
        let stderr = String(decoding: try setup.directory.read("put.log"), as: UTF8.self)
        #expect(put.terminationStatus == 4, "\(stderr)")
        #expect(stderr.hasPrefix("silo: error: ") && stderr.contains("/f.txt"), "\(stderr)")
        #expect(try setup.silo.run(["volume", "get", "v", "/f.txt", "-"]).stdout == "theirs")
        let history = try await other.history(of: try VolumeName("v"))
        #expect(history.count == 2 && history.last?.author == "other")
    }
}

extension ServerTests {
    @Test func theServerKeepsMetadataAndBlocksWhereItsURLsSay() throws {
        let directory = try TemporaryDirectory("silo-server-store")
        defer { directory.remove() }
        let server = try SiloServerProcess(
            dataDirectory: directory.file("data"),
            arguments: ["--metadata", "sqlite://\(directory.path)/db/metadata.sqlite", "--blocks", "file://\(directory.path)/disk/blocks"]
        )
        defer { server.stop() }
        let silo = SiloBinary(home: directory.file("home")).using(server)
        let file = try directory.write("big.bin", pseudoRandomBytes(count: 3 << 20, seed: 4))
        #expect(try silo.run(["volume", "create", "v"]).status == 0)
        #expect(try silo.run(["volume", "put", "v", file, "/big.bin"]).status == 0)
        #expect(try silo.run(["volume", "get", "v", "/big.bin", "-"]).stdoutBytes == (try directory.read("big.bin")))
        let manager = FileManager.default
        #expect(manager.fileExists(atPath: directory.path + "/db/metadata.sqlite"))
        #expect(manager.enumerator(atPath: directory.path + "/disk/blocks")?.allObjects.isEmpty == false)
        // The data directory keeps the admin token only.
        #expect(!manager.fileExists(atPath: directory.path + "/data/metadata.sqlite"))
        #expect(!manager.fileExists(atPath: directory.path + "/data/blocks"))

        // A URL this build cannot serve is refused before anything starts, saying what it takes.
        let refused = try SiloBinary(home: directory.file("home")).run(
            ["serve", "--data", directory.file("other"), "--metadata", "postgres://db.example/silo", "--listen", "127.0.0.1:0"])
        #expect(refused.status == 64)
        #expect(refused.stderr.contains("sqlite:///absolute/path/metadata.sqlite"), "\(refused.stderr)")
        #expect(!manager.fileExists(atPath: directory.file("other")))
    }
}
