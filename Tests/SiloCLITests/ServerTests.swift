import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SiloClient
import SiloCore
import SiloTesting
import Testing

/// `silo serve` as its clients meet it: tokens and workspaces, retries, crashes, and bad requests.
@Suite(.timeLimit(.minutes(10)), .ownThread) struct ServerTests {
    final class Setup {
        let directory: TemporaryDirectory
        let server: SiloServerProcess
        let silo: SiloBinary

        init(serverArguments: [String] = []) throws {
            directory = try TemporaryDirectory("silo-server")
            server = try SiloServerProcess(dataDirectory: directory.path + "/data", arguments: serverArguments)
            silo = SiloBinary(home: directory.path + "/home").using(server)
        }

        func client(token: String? = nil, retry: RemoteVolumeService.RetryPolicy = .init()) throws -> RemoteVolumeService {
            try RemoteVolumeService(url: server.url, token: token ?? server.adminToken, author: "test", retry: retry)
        }

        /// A new token for `workspace`, made through the CLI.
        func token(for workspace: String) throws -> String {
            let output = try silo.run(["token", "create", "--workspace", workspace])
            #expect(output.status == 0, "\(output.stderr)")
            return output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// One request with the admin token (or `token`): status, body and headers of the answer.
        func send(
            _ http: HTTPClient, _ method: HTTPMethod, _ path: String, token: String? = nil, body: [UInt8]? = nil,
            headers: [(String, String)] = []
        ) async throws -> (Int, [UInt8], HTTPHeaders) {
            var request = HTTPClientRequest(url: server.url + path)
            request.method = method
            request.headers.add(name: "Authorization", value: "Bearer \(token ?? server.adminToken)")
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
            let response = try await http.execute(request, timeout: .seconds(30))
            let bytes = try await response.body.collect(upTo: 16 << 20)
            return (Int(response.status.code), Array(buffer: bytes), response.headers)
        }

        deinit {
            server.stop()
            directory.remove()
        }
    }

    @Test func aHundredConcurrentCommittersAllLandAndNoneLosesData() async throws {
        let setup = try Setup()
        let name = try VolumeName("shared")
        let admin = try setup.client()
        defer { Task { try? await admin.close() } }
        _ = try await admin.createVolume(name)
        // A hundred clients, each its own connection pool, commit at once: one file each, and all
        // of them the same file too (last writer wins it whole).
        let clients = try (0..<100).map { _ in try setup.client() }
        defer { for client in clients { Task { try? await client.close() } } }
        let versions = try await withThrowingTaskGroup(of: Int64.self) { group in
            for (index, client) in clients.enumerated() {
                group.addTask {
                    let own = Array("writer \(index)".utf8)
                    let changes = Changeset([
                        .put(try VolumePath("own/\(index)"), FilePut(content: .inline(own), size: Int64(own.count), mtimeNanoseconds: 0)),
                        .put(try VolumePath("same"), FilePut(content: .inline(own), size: Int64(own.count), mtimeNanoseconds: 0)),
                    ])
                    return try await client.commit(changes, to: name, options: CommitOptions(author: "w\(index)")).version.version.rawValue
                }
            }
            var versions: [Int64] = []
            for try await version in group { versions.append(version) }
            return versions
        }
        #expect(Set(versions) == Set(1...100))
        for index in 0..<100 {
            #expect(try await admin.read(try VolumePath("own/\(index)"), in: name) == Array("writer \(index)".utf8))
        }
        // The writer whose commit made version 100 holds `same`, whole.
        let history = try await admin.history(of: name)
        let last = try #require(history.last)
        #expect(last.version.rawValue == 100)
        #expect(try await admin.read(try VolumePath("same"), in: name) == Array("writer \(last.author.dropFirst())".utf8))
    }

    @Test func tokensSeeOnlyTheirOwnWorkspace() async throws {
        let setup = try Setup()
        let alice = try setup.client(token: try setup.token(for: "alice"))
        let bob = try setup.client(token: try setup.token(for: "bob"))
        defer {
            Task { try? await alice.close() }
            Task { try? await bob.close() }
        }
        let name = try VolumeName("models")
        _ = try await alice.createVolume(name)
        let secret = pseudoRandomBytes(count: 100_000, seed: 1)
        let content = try await alice.uploadBlocks(secret, blockSize: 64 * 1024)
        _ = try await alice.commit(
            Changeset([.put(try VolumePath("weights"), FilePut(content: content, size: Int64(secret.count), mtimeNanoseconds: 0))]),
            to: name, options: CommitOptions(author: "alice")
        )
        let hashes = content.blockHashes

        // Bob sees none of it: not the volume, not the blocks, not even that they exist.
        #expect(try await bob.listVolumes().isEmpty)
        let unseen = await #expect(throws: SiloError.self) { _ = try await bob.volume(name) }
        #expect(unseen?.code == .volumeNotFound)
        #expect(try await bob.missingBlocks(hashes) == hashes)
        do {
            _ = try await bob.readBlock(hashes[0])
            Issue.record("bob read a block of alice's workspace")
        } catch let error as SiloError {
            #expect(error.code == .missingBlock)
        }
        // A volume of the same name in Bob's workspace is his own.
        _ = try await bob.createVolume(name)
        #expect(try await bob.tree(.root, in: name, version: nil).isEmpty)
        #expect(try await alice.missingBlocks(hashes).isEmpty)

        // Only admin tokens manage tokens.
        do {
            _ = try await bob.createToken(workspace: "alice", name: nil, role: .admin)
            Issue.record("a plain token created a token")
        } catch let error as SiloError {
            #expect(error.code == .forbidden)
        }
    }

    /// An admin manages its own workspace's tokens only; the server admin manages every workspace's.
    @Test func adminsManageOnlyTheirOwnWorkspace() async throws {
        let setup = try Setup()
        let server = try setup.client()
        let reader = try await server.createToken(workspace: "wa", name: "reader", role: .member)
        let admin = try await server.createToken(workspace: "wr", name: "wr-admin", role: .admin)
        let wrAdmin = try setup.client(token: admin.token)
        defer {
            Task { try? await server.close() }
            Task { try? await wrAdmin.close() }
        }
        let serverAdmin = try #require(try await server.listTokens(workspace: "default").first { $0.role == .serverAdmin })

        func refused(_ code: SiloError.Code, _ call: () async throws -> Void) async {
            do {
                try await call()
                Issue.record("an admin of 'wr' was allowed a call outside its workspace")
            } catch let error as SiloError {
                #expect(error.code == code, "\(error.message)")
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
        await refused(.forbidden) { _ = try await wrAdmin.createToken(workspace: "wa", name: nil, role: .member) }
        await refused(.forbidden) { _ = try await wrAdmin.listTokens(workspace: "wa") }
        await refused(.forbidden) { _ = try await wrAdmin.createToken(workspace: nil, name: nil, role: .serverAdmin) }
        await refused(.notFound) { try await wrAdmin.revokeToken(id: reader.id) }
        await refused(.notFound) { try await wrAdmin.revokeToken(id: serverAdmin.id) }

        // Within its own workspace it manages tokens, and sees only that workspace's.
        let made = try await wrAdmin.createToken(workspace: nil, name: "worker", role: .member)
        #expect(made.workspace == "wr")
        #expect(Set(try await wrAdmin.listTokens(workspace: nil).map(\.workspace)) == ["wr"])
        try await wrAdmin.revokeToken(id: made.id)

        // The server admin sees and manages them all.
        #expect(Set(try await server.listTokens(workspace: nil).map(\.workspace)) == ["default", "wa", "wr"])
        try await server.revokeToken(id: reader.id)
        #expect(try await server.listTokens(workspace: "wa").isEmpty)
        #expect(try await server.listTokens(workspace: "default").contains { $0.id == serverAdmin.id })
    }

    @Test func wrongMissingAndRevokedTokensAreRefusedAndChangeNothing() async throws {
        let setup = try Setup()
        #expect(try setup.silo.run(["volume", "create", "v"]).status == 0)
        for token in ["", "silo_nope", "Bearer", String(repeating: "x", count: 5000)] {
            let output = try SiloBinary(home: setup.silo.home, environment: ["SILO_SERVER": setup.server.url, "SILO_TOKEN": token])
                .run(["volume", "create", "w"])
            #expect(output.status == 7, "token '\(token.prefix(20))': \(output.stderr)")
            #expect(output.stderr.hasPrefix("silo: error: "))
        }
        let carol = try setup.token(for: "default")
        let asCarol = SiloBinary(home: setup.silo.home).using(setup.server, token: carol)
        #expect(try asCarol.run(["volume", "list"]).stdout.contains("v"))
        let id = String(carol.split(separator: "_")[1])
        #expect(try setup.silo.run(["token", "list"]).stdout.contains(id))
        #expect(try setup.silo.run(["token", "revoke", id]).status == 0)
        let refused = try asCarol.run(["volume", "create", "w"])
        #expect(refused.status == 7)
        #expect(refused.stderr.contains("revoked"))
        let list = try setup.silo.run(["volume", "list", "--json"])
        #expect(!list.stdout.contains("\"w\""))
        #expect(!(try setup.silo.run(["token", "list"]).stdout.contains(id)))
    }

    @Test func aCommitRetriedAfterALostAnswerAppliesOnce() async throws {
        let setup = try Setup()
        // Between client and server: passes everything, but drops the connection instead of relaying the
        // answer to the first commit, as a network failure after the server applied it would.
        let proxy = try DroppingProxy(upstream: setup.server.url, dropAnswerTo: "/commits")
        defer { proxy.close() }
        let service = try RemoteVolumeService(url: proxy.url, token: setup.server.adminToken, author: "test")
        let name = try VolumeName("v")
        _ = try await service.createVolume(name)
        let result = try await service.commit(
            Changeset([.put(try VolumePath("a"), FilePut(content: .inline(Array("one".utf8)), size: 3, mtimeNanoseconds: 0))]),
            to: name, options: CommitOptions(author: "test")
        )
        #expect(proxy.dropped == 1)
        #expect(result.wasRetry)
        #expect(result.version.version == Version(1))
        #expect(try await service.history(of: name).count == 2)
        try await service.close()

        // The same id sent again by hand returns the same version; a new id makes a new one.
        let direct = try setup.client()
        let again = try await direct.commit(
            Changeset([.put(try VolumePath("a"), FilePut(content: .inline(Array("two".utf8)), size: 3, mtimeNanoseconds: 0))]),
            to: name, options: CommitOptions(author: "test", commitID: "fixed-id")
        )
        let repeated = try await direct.commit(Changeset([]), to: name, options: CommitOptions(author: "test", commitID: "fixed-id"))
        #expect(repeated.wasRetry && repeated.version.version == again.version.version)
        #expect(try await direct.history(of: name).count == 3)
        try await direct.close()
    }

    @Test func aServerKilledMidPutShowsTheOldVersionOrTheNewOneWhole() throws {
        let setup = try Setup()
        try setup.directory.write("small.txt", "before")
        #expect(try setup.silo.run(["volume", "create", "v"]).status == 0)
        #expect(try setup.silo.run(["volume", "put", "v", setup.directory.file("small.txt")]).status == 0)
        let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
        // Kill the server at spread-out moments of a 200 MiB put (new bytes each round, so nothing is
        // already stored): while blocks upload, around the commit, and after it.
        for (round, delay) in [0.1, 0.3, 0.6, 1.2].enumerated() {
            let source = setup.directory.file("big\(round).bin")
            _ = FileManager.default.createFile(atPath: source, contents: random.readData(ofLength: 200 * 1024 * 1024))
            // Through the server as it is now: a restart puts it on a new port, and the old one may be
            // another test's server's by then.
            let put = try setup.silo.using(setup.server).start(["volume", "put", "v", source, "/big\(round).bin"])
            Thread.sleep(forTimeInterval: delay)  // fault injection: the moment of the kill, not synchronisation
            setup.server.stop(signal: SIGKILL)
            put.waitUntilExit()
            try setup.server.start()
            let client = setup.silo.using(setup.server)
            let listing = try client.run(["volume", "ls", "v", "/big\(round).bin"])
            if listing.status == 0 {
                // The commit landed: the whole file is there and verifies.
                let got = try client.run(["volume", "get", "v", "/big\(round).bin", setup.directory.file("got\(round)")])
                #expect(got.status == 0, "\(got.stderr)")
                #expect(FileManager.default.contentsEqual(atPath: source, andPath: setup.directory.file("got\(round)")))
            } else {
                #expect(listing.status == 3)
                #expect(put.terminationStatus == 8, "a put that lost its server says the server is unavailable")
            }
            // Every committed version reads back whole.
            let all = try client.run(["volume", "get", "v", "/", setup.directory.file("all\(round)")])
            #expect(all.status == 0, "\(all.stderr)")
            #expect(try setup.directory.read("all\(round)/small.txt") == Array("before".utf8))
            for file in try FileManager.default.contentsOfDirectory(atPath: setup.directory.file("all\(round)")) where file != "small.txt" {
                #expect(FileManager.default.contentsEqual(atPath: setup.directory.file(file), andPath: setup.directory.file("all\(round)/\(file)")))
            }
            try? FileManager.default.removeItem(atPath: setup.directory.file("all\(round)"))
        }
    }

    @Test func badRequestsGetAClearJSONErrorAndNeverA5xx() async throws {
        let setup = try Setup()
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        #expect(try setup.silo.run(["volume", "create", "v"]).status == 0)
        func send(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = []) async throws -> (Int, String) {
            let (status, bytes, _) = try await setup.send(http, method, path, body: body, headers: headers)
            return (status, String(decoding: bytes, as: UTF8.self))
        }

        let cases: [(HTTPMethod, String, [UInt8]?, Int, String)] = [
            (.POST, "/v1/volumes", Array("{not json".utf8), 400, "invalid_argument"),
            (.POST, "/v1/volumes", Array(#"{"name": "../etc"}"#.utf8), 400, "invalid"),
            (.POST, "/v1/volumes", [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x7D], 400, "invalid_argument"),
            (.POST, "/v1/volumes", Array(repeating: 0x20, count: 5 * 1024 * 1024), 413, "too_large"),
            (.GET, "/v1/volumes/v/list?path=/a/../../etc", nil, 400, "invalid_path"),
            (.GET, "/v1/volumes/v/list?path=a%00b", nil, 400, "invalid_path"),
            (.GET, "/v1/volumes/v/list?path=%FF%FE", nil, 400, "invalid_argument"),
            (.GET, "/v1/volumes/v/list?path=" + String(repeating: "a/", count: 3000), nil, 400, "invalid_path"),
            (.GET, "/v1/volumes/v/list?version=-1", nil, 400, "invalid_argument"),
            (.GET, "/v1/volumes/v/list?version=99", nil, 404, "version_not_found"),
            (.GET, "/v1/volumes/bad%20name", nil, 400, "invalid_name"),
            (.GET, "/v1/blocks/nothex", nil, 400, "invalid"),
            (.PUT, "/v1/blocks/" + String(repeating: "0", count: 64), Array("bytes".utf8), 422, "corrupt_block"),
            (.POST, "/v1/volumes/v/commits", Array(#"{"commitID": "", "author": "", "changes": []}"#.utf8), 400, "invalid_argument"),
            (
                .POST, "/v1/volumes/v/commits",
                Array(#"{"commitID": "c", "author": "", "changes": [{"op": "put", "path": "x", "size": 10, "mtimeNs": 0, "inline": "YQ=="}]}"#.utf8),
                400, "invalid_argument"
            ),
            (
                .POST, "/v1/volumes/v/commits",
                Array(#"{"commitID": "c", "author": "", "changes": [{"op": "put", "path": "x", "size": 1, "mtimeNs": 0, "blocks": ["\#(String(repeating: "ab", count: 32))"], "blockSize": 8}]}"#.utf8),
                422, "missing_block"
            ),
            (.GET, "/v1/no-such-route", nil, 404, "not_found"),
        ]
        for (method, path, body, status, code) in cases {
            let (got, text) = try await send(method, path, body: body)
            #expect(got == status, "\(method) \(path.prefix(60)): \(text)")
            #expect(text.contains("\"code\":\"\(code)"), "\(method) \(path.prefix(60)): \(text)")
            #expect(text.contains("\"message\""))
        }
        // A header under the 32 KiB limit is served; one over it is refused before any route sees it:
        // 400 with an empty body, and the connection closed in order after the answer, since the
        // server cannot tell where that request ends. Sent raw, so no client library hides how.
        func rawGet(headerBytes: Int) throws -> (String, RawHTTPEnd) {
            let request = "GET /v1/volumes HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(setup.server.adminToken)\r\n"
                + "X-Big: \(String(repeating: "h", count: headerBytes))\r\nConnection: close\r\n\r\n"
            let (answer, end) = try rawHTTPExchange(with: setup.server.url, sending: Array(request.utf8))
            return (String(decoding: answer, as: UTF8.self), end)
        }
        let (fits, fitsEnd) = try rawGet(headerBytes: 16 * 1024)
        #expect(fits.hasPrefix("HTTP/1.1 200 OK\r\n") && fits.contains(#""name":"v""#), "\(fits)")
        #expect(fitsEnd == .closed)
        let (refused, refusedEnd) = try rawGet(headerBytes: 64 * 1024)
        #expect(refused.lowercased() == "http/1.1 400 bad request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n", "\(refused)")
        #expect(refusedEnd == .closed)
        // Nothing of that changed the volume, and the server still answers.
        #expect(try setup.silo.run(["volume", "history", "v", "--json"]).stdout.components(separatedBy: "\"version\"").count == 2)
        #expect(try await send(.GET, "/healthz").0 == 200)
    }

    /// Requests any token holder could send that once stopped the server: a range ending at
    /// Int64.max, a file of Int64.max bytes, a file claiming more bytes than its block holds.
    @Test func numbersFromARequestNeverStopTheServer() async throws {
        let setup = try Setup()
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        #expect(try setup.silo.run(["volume", "create", "v"]).status == 0)
        let block = Block(bytes: Array("abcd".utf8))
        #expect(try await setup.send(http, .PUT, "/v1/blocks/\(block.hash.hex)", body: block.bytes).0 == 204)

        let ranged = try await setup.send(http, .GET, "/v1/blocks/\(block.hash.hex)", headers: [("Range", "bytes=0-9223372036854775807")])
        #expect(ranged.0 == 206 && ranged.1 == block.bytes)
        #expect(ranged.2.first(name: "Content-Range") == "bytes 0-3/4")
        let suffix = try await setup.send(http, .GET, "/v1/blocks/\(block.hash.hex)", headers: [("Range", "bytes=-9223372036854775807")])
        #expect(suffix.0 == 206 && suffix.1 == block.bytes)

        for (size, blockSize) in [("9223372036854775807", 8_388_608), ("8388608", 8_388_608), ("9223372036854775807", 67_108_864)] {
            let commit = #"{"commitID": "c\#(size)\#(blockSize)", "changes": [{"op": "put", "path": "f", "size": \#(size), "mtimeNs": 0, "blocks": ["\#(block.hash.hex)"], "blockSize": \#(blockSize)}]}"#
            let (status, body, _) = try await setup.send(http, .POST, "/v1/volumes/v/commits", body: Array(commit.utf8))
            #expect(status == 400, "size \(size): \(String(decoding: body, as: UTF8.self))")
            #expect(String(decoding: body, as: UTF8.self).contains(#""code":"invalid_argument""#))
        }
        #expect(try await setup.send(http, .GET, "/healthz").0 == 200)
        #expect(try setup.silo.run(["volume", "history", "v", "--json"]).stdout.components(separatedBy: "\"version\"").count == 2)
    }

    @Test func filesAndBlocksDownloadWithRanges() async throws {
        let setup = try Setup()
        let bytes = pseudoRandomBytes(count: 3 * 1024 * 1024 + 17, seed: 5)
        try setup.directory.write("f.bin", bytes)
        #expect(try setup.silo.run(["volume", "create", "v"]).status == 0)
        #expect(try setup.silo.run(["volume", "put", "v", setup.directory.file("f.bin")]).status == 0)
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        func get(_ range: String?) async throws -> (Int, [UInt8], String?) {
            var request = HTTPClientRequest(url: setup.server.url + "/v1/volumes/v/file?path=/f.bin")
            request.headers.add(name: "Authorization", value: "Bearer \(setup.server.adminToken)")
            if let range { request.headers.add(name: "Range", value: range) }
            let response = try await http.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 16 << 20)
            return (Int(response.status.code), Array(buffer: body), response.headers.first(name: "Content-Range"))
        }
        let whole = try await get(nil)
        #expect(whole.0 == 200 && whole.1 == bytes)
        let middle = try await get("bytes=1000000-2999999")
        #expect(middle.0 == 206 && middle.1 == Array(bytes[1_000_000..<3_000_000]))
        #expect(middle.2 == "bytes 1000000-2999999/\(bytes.count)")
        let tail = try await get("bytes=-17")
        #expect(tail.1 == Array(bytes.suffix(17)))
        #expect(try await get("bytes=\(bytes.count)-").0 == 416)
    }

    @Test func healthMetricsAndTheOpenAPIDocumentNeedNoToken() async throws {
        let setup = try Setup()
        #expect(try setup.silo.run(["volume", "create", "v"]).status == 0)
        try setup.directory.write("f", "x")
        #expect(try setup.silo.run(["volume", "put", "v", setup.directory.file("f")]).status == 0)
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        func get(_ path: String) async throws -> (Int, String) {
            let response = try await http.execute(HTTPClientRequest(url: setup.server.url + path), timeout: .seconds(30))
            return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 4 << 20)))
        }
        #expect(try await get("/healthz") == (200, #"{"status":"ok"}"#))
        let metrics = try await get("/metrics").1
        #expect(metrics.contains("silo_commits 1"))
        #expect(metrics.contains("hb_requests"))
        let document = try await get("/v1/openapi.json")
        #expect(document.0 == 200)
        let parsed = try JSONSerialization.jsonObject(with: Data(document.1.utf8)) as? [String: Any]
        #expect((parsed?["openapi"] as? String)?.hasPrefix("3.") == true)
        #expect(try await get("/v1/volumes").0 == 401)
    }

    @Test func aBlockDamagedOnTheServersDiskIsAnErrorNeverBadData() throws {
        let setup = try Setup()
        let bytes = pseudoRandomBytes(count: 100_000, seed: 8)
        try setup.directory.write("f.bin", bytes)
        #expect(try setup.silo.run(["volume", "create", "v"]).status == 0)
        #expect(try setup.silo.run(["volume", "put", "v", setup.directory.file("f.bin")]).status == 0)
        // Flip one byte of the block file the server keeps (blocks/WORKSPACE/ab/HASH).
        let blocks = setup.server.dataDirectory + "/blocks/default"
        let shard = try #require(try FileManager.default.contentsOfDirectory(atPath: blocks).first)
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: blocks + "/" + shard).first)
        let path = blocks + "/" + shard + "/" + name
        var damaged = try #require(FileManager.default.contents(atPath: path))
        damaged[damaged.count / 2] ^= 0xFF
        try damaged.write(to: URL(fileURLWithPath: path))

        let got = try setup.silo.run(["volume", "get", "v", "/f.bin", setup.directory.file("copy.bin")])
        #expect(got.status == 5, "\(got.stderr)")
        #expect(got.stderr.contains("corrupt"))
        #expect(!FileManager.default.fileExists(atPath: setup.directory.file("copy.bin")))
    }
}
