import AsyncHTTPClient
import Foundation
import NIOCore
import SiloCore
import SiloTesting
import Testing

/// A server shared by many clients holds a bounded amount of request bodies in memory, and each
/// workspace stays within its quotas.
@Suite(.ownThread) struct ServerLimitTests {
    @Test(.timeLimit(.minutes(5))) func requestBodiesBeyondTheMemoryBudgetAreAskedToComeBack() async throws {
        let directory = try TemporaryDirectory("silo-limits")
        defer { directory.remove() }
        let server = try SiloServerProcess(dataDirectory: directory.path + "/data", arguments: ["--memory-budget-mib", "20"])
        defer { server.stop() }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        func upload(_ block: Block, body: HTTPClientRequest.Body) async throws -> HTTPClientResponse {
            var request = HTTPClientRequest(url: server.url + "/v1/blocks/\(block.hash.hex)")
            request.method = .PUT
            request.headers.add(name: "Authorization", value: "Bearer \(server.adminToken)")
            request.body = body
            return try await http.execute(request, timeout: .seconds(60))
        }

        // A 16 MiB upload (16 MiB of the budget of 20) that sends its head and first byte, then holds.
        let held = Block(bytes: pseudoRandomBytes(count: 16 << 20, seed: 1))
        let (chunks, feed) = AsyncStream<ByteBuffer>.makeStream()
        feed.yield(ByteBuffer(bytes: held.bytes.prefix(1)))
        let first = Task { try await upload(held, body: .stream(chunks, length: .known(Int64(held.bytes.count)))) }
        // Wait until the server has reserved its share, as it reports in /metrics.
        func reserved() async throws -> Int {
            let response = try await http.execute(HTTPClientRequest(url: server.url + "/metrics"), timeout: .seconds(30))
            let text = String(buffer: try await response.body.collect(upTo: 4 << 20))
            let line = text.split(separator: "\n").first { $0.hasPrefix("silo_request_bytes_reserved ") }
            return line.flatMap { Int(Double($0.split(separator: " ")[1]) ?? 0) } ?? 0
        }
        let deadline = ContinuousClock.now + .seconds(120)
        while try await reserved() < 16 << 20 {
            try #require(ContinuousClock.now < deadline, "the held upload never reached the server")
            try await Task.sleep(for: .milliseconds(20))  // gives the thread back between polls of the gauge
        }

        // Meanwhile an 8 MiB upload does not fit: 503 with Retry-After, until the first is done.
        let other = Block(bytes: pseudoRandomBytes(count: 8 << 20, seed: 2))
        let answer = try await upload(other, body: .bytes(ByteBuffer(bytes: other.bytes)))
        #expect(answer.status.code == 503)
        #expect(answer.headers.first(name: "Retry-After") == "1")
        #expect(String(buffer: try await answer.body.collect(upTo: 1 << 20)).contains("memory budget"))

        feed.yield(ByteBuffer(bytes: held.bytes.dropFirst()))
        feed.finish()
        #expect(try await first.value.status.code == 204)
        #expect(try await upload(other, body: .bytes(ByteBuffer(bytes: other.bytes))).status.code == 204)
    }

    @Test func aWorkspaceStaysWithinItsQuotasAndAPutBeyondChangesNothing() throws {
        let directory = try TemporaryDirectory("silo-limits")
        defer { directory.remove() }
        let server = try SiloServerProcess(
            dataDirectory: directory.path + "/data", arguments: ["--workspace-max-bytes", "300K", "--workspace-max-volumes", "1"]
        )
        defer { server.stop() }
        let silo = SiloBinary(home: directory.path + "/home").using(server)
        #expect(try silo.run(["volume", "create", "v"]).status == 0)
        let second = try silo.run(["volume", "create", "w"])
        #expect(second.status == 6, "\(second.stderr)")
        #expect(second.stderr.contains("quota of 1 volume"))

        try directory.write("small.bin", pseudoRandomBytes(count: 200_000, seed: 3))
        #expect(try silo.run(["volume", "put", "v", directory.file("small.bin")]).status == 0)
        try directory.write("big.bin", pseudoRandomBytes(count: 200_000, seed: 4))
        let beyond = try silo.run(["volume", "put", "v", directory.file("big.bin")])
        #expect(beyond.status == 6, "\(beyond.stderr)")
        #expect(beyond.stderr.contains("quota"))
        #expect(try silo.run(["volume", "ls", "v", "/big.bin"]).status == 3)
        #expect(try silo.run(["volume", "history", "v", "--json"]).stdout.components(separatedBy: "\"version\"").count == 3)
        // The same bytes again cost nothing: a put of a copy of what is stored fits.
        #expect(try silo.run(["volume", "put", "v", directory.file("small.bin"), "/again.bin"]).status == 0)
        // Another workspace has quotas of its own.
        let other = try silo.run(["token", "create", "--workspace", "other"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let asOther = SiloBinary(home: directory.path + "/home").using(server, token: other)
        #expect(try asOther.run(["volume", "create", "v"]).status == 0)
        #expect(try asOther.run(["volume", "put", "v", directory.file("big.bin")]).status == 0)
    }
}
