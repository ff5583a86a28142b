import Foundation
import SiloCore
import SiloRuntime
import SiloTesting
import SiloWire
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The mount control protocol: typed requests with a plain JSON form, answered over a Unix socket.
// The limit counts the wait for a thread of its own behind long process-driving tests, too.
@Suite(.timeLimit(.minutes(10)), .ownThread) struct MountControlTests {
    @Test func requestsHaveOnePlainJSONFormEach() throws {
        let forms: [(MountControl.Request, String)] = [
            (.commit(author: "trainer"), #"{"action":"commit","author":"trainer"}"#),
            (.commit(author: nil), #"{"action":"commit"}"#),
            (.reload, #"{"action":"reload"}"#),
            (.status, #"{"action":"status"}"#),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for (request, json) in forms {
            #expect(String(decoding: try encoder.encode(request), as: UTF8.self) == json)
            #expect(try JSONDecoder().decode(MountControl.Request.self, from: Data(json.utf8)) == request)
        }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(MountControl.Request.self, from: Data(#"{"action":"format"}"#.utf8)) }
    }

    @Test func eachRequestReachesTheServingSideAndItsAnswerComesBack() throws {
        let directory = try TemporaryDirectory("silo-control")
        defer { directory.remove() }
        let socket = directory.file("control.sock")
        let listener = try MountControl.serve(at: socket) { request in
            switch request {
            case .commit(let author): MountControl.Answer(version: 7, changedPaths: author == "trainer" ? 3 : 0)
            case .reload: MountControl.Answer(version: 8, changedPaths: 1)
            case .status:
                MountControl.Answer(
                    version: 8, changedPaths: 1,
                    status: MountControl.Status(writable: true, passthrough: false, passedThroughOpens: 0, servedOpens: 2, bytesServed: 10)
                )
            }
        }
        defer { close(listener) }
        #expect(try MountControl.send(.commit(author: "trainer"), to: socket).changedPaths == 3)
        #expect(try MountControl.send(.reload, to: socket).version == 8)
        #expect(try MountControl.send(.status, to: socket).status?.servedOpens == 2)
        // A line that is no request gets an answer that says so, and the socket keeps answering.
        let answer = try rawExchange(#"{"action":"format"}"#, at: socket)
        #expect(answer.contains("malformed request") && answer.contains("'commit', 'reload' and 'status'"))
        #expect(try MountControl.send(.reload, to: socket).version == 8)
    }

    @Test func aSocketWithNobodyServingSaysSo() throws {
        let directory = try TemporaryDirectory("silo-control")
        defer { directory.remove() }
        let error = #expect(throws: SiloError.self) { try MountControl.send(.status, to: directory.file("control.sock")) }
        #expect(error?.code == .unavailable)
    }

    /// Sends one line as it is and returns the line that comes back.
    func rawExchange(_ line: String, at path: String) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8) + [0])
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(connected == 0)
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var answer: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1, byte != 0x0A { answer.append(byte) }
        return String(decoding: answer, as: UTF8.self)
    }
}
