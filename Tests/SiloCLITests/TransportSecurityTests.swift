import AsyncHTTPClient
import Foundation
import SiloCore
import SiloTesting
import Testing

/// Tokens are bearer secrets: they cross networks only over TLS, and answers reveal nothing of the
/// server's disks.
@Suite(.ownThread) struct TransportSecurityTests {
    /// A self-signed certificate for 127.0.0.1 and localhost, made with openssl for this test.
    static func makeCertificate(in directory: TemporaryDirectory) throws -> (certificate: String, key: String) {
        let certificate = directory.file("server.pem")
        let key = directory.file("server.key")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", certificate,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "openssl could not make a test certificate")
        return (certificate, key)
    }

    @Test func theCLITalksToAServerOverTLSTrustingTheCertificateItIsGiven() throws {
        let directory = try TemporaryDirectory("silo-tls")
        defer { directory.remove() }
        let (certificate, key) = try Self.makeCertificate(in: directory)
        let server = try SiloServerProcess(dataDirectory: directory.path + "/data", arguments: ["--tls-cert", certificate, "--tls-key", key])
        defer { server.stop() }
        #expect(server.url.hasPrefix("https://127.0.0.1:"))

        let trusting = SiloBinary(
            home: directory.path + "/home",
            environment: ["SILO_SERVER": server.url, "SILO_TOKEN": server.adminToken, "SILO_CA_CERT": certificate]
        )
        #expect(try trusting.run(["volume", "create", "v"]).status == 0)
        try directory.write("f.bin", pseudoRandomBytes(count: 50_000, seed: 6))
        #expect(try trusting.run(["volume", "put", "v", directory.file("f.bin")]).status == 0)
        #expect(try trusting.run(["volume", "get", "v", "/f.bin", directory.file("back.bin")]).status == 0)
        #expect(FileManager.default.contents(atPath: directory.file("back.bin")) == FileManager.default.contents(atPath: directory.file("f.bin")))

        // Without the certificate the client does not trust the server, and says what to do.
        let distrusting = SiloBinary(home: directory.path + "/home", environment: ["SILO_SERVER": server.url, "SILO_TOKEN": server.adminToken])
        let refused = try distrusting.run(["volume", "list"])
        #expect(refused.status == 8, "\(refused.stderr)")
        #expect(refused.stderr.contains("SILO_CA_CERT"))

        // Plain HTTP to a TLS listener gets nowhere either.
        let plain = SiloBinary(
            home: directory.path + "/home",
            environment: ["SILO_SERVER": server.url.replacingOccurrences(of: "https://", with: "http://"), "SILO_TOKEN": server.adminToken]
        )
        #expect(try plain.run(["volume", "list"]).status == 8)
    }

    @Test func plainHTTPToAnotherHostIsRefusedUnlessAllowed() throws {
        let directory = try TemporaryDirectory("silo-tls")
        defer { directory.remove() }
        // 192.0.2.0/24 is reserved for documentation: nothing answers there.
        let remote = ["SILO_SERVER": "http://192.0.2.1:7433", "SILO_TOKEN": "silo_000000000000_" + String(repeating: "0", count: 64)]
        let refused = try SiloBinary(home: directory.path + "/home", environment: remote).run(["volume", "list"])
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("refusing to send a token in clear text"))
        #expect(refused.stderr.contains("SILO_ALLOW_INSECURE=1"))

        // Allowed, the client tries (and, with nothing there, reports the server unreachable).
        var allowed = remote
        allowed["SILO_ALLOW_INSECURE"] = "1"
        let attempted = try SiloBinary(home: directory.path + "/home", environment: allowed).run(["volume", "list"])
        #expect(attempted.status == 8, "\(attempted.stderr)")
        #expect(!attempted.stderr.contains("refusing"))
    }

    @Test func aListenerBeyondLoopbackWithoutTLSIsWarnedAbout() throws {
        let directory = try TemporaryDirectory("silo-tls")
        defer { directory.remove() }
        let (process, line) = try SiloBinary(home: directory.path + "/home").startReadingFirstLine(
            ["serve", "--data", directory.path + "/data", "--listen", "0.0.0.0:0", "--log-level", "warning"], log: directory.file("log")
        )
        defer {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        #expect(line.contains("listening on http://0.0.0.0:"))
        let log = try String(contentsOfFile: directory.file("log"), encoding: .utf8)
        #expect(log.contains("without TLS: tokens and data cross the network in clear text"), "\(log)")
    }

    @Test func metricsCanBeKeptToServerAdminsAndAnswersNameNoServerPath() async throws {
        let directory = try TemporaryDirectory("silo-tls")
        defer { directory.remove() }
        let server = try SiloServerProcess(dataDirectory: directory.path + "/data", arguments: ["--private-metrics"])
        defer { server.stop() }
        let silo = SiloBinary(home: directory.path + "/home").using(server)
        let member = try silo.run(["token", "create", "--workspace", "default"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        func status(_ path: String, token: String?) async throws -> (Int, String) {
            var request = HTTPClientRequest(url: server.url + path)
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            let response = try await http.execute(request, timeout: .seconds(30))
            return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 4 << 20)))
        }
        #expect(try await status("/metrics", token: nil).0 == 401)
        #expect(try await status("/metrics", token: member).0 == 403)
        #expect(try await status("/metrics", token: server.adminToken).0 == 200)
        #expect(try await status("/healthz", token: nil).0 == 200)

        // A block damaged on the server's disk: the answer says so without naming where it lives.
        try directory.write("f.bin", pseudoRandomBytes(count: 50_000, seed: 7))
        #expect(try silo.run(["volume", "create", "v"]).status == 0)
        #expect(try silo.run(["volume", "put", "v", directory.file("f.bin")]).status == 0)
        let blocks = server.dataDirectory + "/blocks/default"
        let shard = try #require(try FileManager.default.contentsOfDirectory(atPath: blocks).first)
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: blocks + "/" + shard).first)
        let file = blocks + "/" + shard + "/" + name
        chmod(file, 0o600)
        var bytes = try #require(FileManager.default.contents(atPath: file))
        bytes[100] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: file))
        let (code, body) = try await status("/v1/blocks/\(name)", token: server.adminToken)
        #expect(code == 422)
        #expect(body.contains("corrupt"))
        #expect(!body.contains(server.dataDirectory) && !body.contains("/blocks/"), "\(body)")
    }
}
