import Foundation
import SiloClient
import SiloCore
import SiloRuntime
import SiloTesting
import Testing

/// The Swift face of a volume with the Python package's (and Modal's) calls, on both stores.
@Suite(.timeLimit(.minutes(5))) struct VolumeAPITests {
    @Test(arguments: StoreSetup.all)
    func aVolumeByNameIsUploadedToListedReadCopiedAndRemovedFrom(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            await #expect(throws: SiloError.self) { _ = try await Volume.fromName("models", service: service) }
            let volume = try await Volume.fromName("models", createIfMissing: true, service: service)
            _ = try await Volume.fromName("models", createIfMissing: true, service: service)  // found, not made again
            let local = try TemporaryDirectory("silo-volume-api")
            defer { local.remove() }
            try local.write("tree/a.txt", "alpha")
            try local.write("tree/sub/b.txt", "beta")
            let model = pseudoRandomBytes(count: 3 << 20, seed: 5)
            try local.write("model.bin", model)
            let first = try await volume.batchUpload { batch in
                try batch.putFile(local.file("model.bin"), at: "/models/")
                try batch.putFile(bytes: Array("notes".utf8), at: "/notes.txt")
                try batch.putDirectory(local.file("tree"), at: "/data")
            }
            #expect(first.version.version == 1)
            let listed = try await volume.iterdir("/")
            #expect(listed.map(\.path).sorted() == ["data", "data/a.txt", "data/sub", "data/sub/b.txt", "models", "models/model.bin", "notes.txt"])
            #expect(listed.first { $0.path == "models/model.bin" }?.size == Int64(model.count))
            #expect(try await volume.iterdir("/", recursive: false).map(\.path) == ["data", "models", "notes.txt"])
            var read: [UInt8] = []
            var chunks = 0
            for try await chunk in volume.readFile("/models/model.bin", chunk: 1 << 20) {
                read += chunk
                chunks += 1
            }
            #expect(read == model && chunks == 3)

            // Without force, one existing path refuses the whole upload; with it, it replaces.
            await #expect(throws: SiloError.self) {
                try await volume.batchUpload { batch in
                    try batch.putFile(bytes: Array("new".utf8), at: "/new.txt")
                    try batch.putFile(bytes: Array("again".utf8), at: "/notes.txt")
                }
            }
            #expect(try await volume.iterdir("/", recursive: false).map(\.path) == ["data", "models", "notes.txt"])
            try await volume.batchUpload(force: true) { try $0.putFile(bytes: Array("again".utf8), at: "/notes.txt") }
            var notes: [UInt8] = []
            for try await chunk in volume.readFile("/notes.txt") { notes += chunk }
            #expect(notes == Array("again".utf8))
            // An older version, read by name.
            let old = try await Volume.fromName("models", service: service, version: Version(1))
            var oldNotes: [UInt8] = []
            for try await chunk in old.readFile("/notes.txt") { oldNotes += chunk }
            #expect(oldNotes == Array("notes".utf8))

            try await volume.copyFiles(["/notes.txt", "/data/a.txt"], to: "/copies/")
            #expect(try await volume.iterdir("/copies").map(\.path) == ["copies/a.txt", "copies/notes.txt"])
            await #expect(throws: SiloError.self) { try await volume.removeFile("/data") }
            try await volume.removeFile("/data", recursive: true)
            #expect(try await volume.iterdir("/", recursive: false).map(\.path) == ["copies", "models", "notes.txt"])
            await #expect(throws: SiloError.self) { try await volume.readOnly().removeFile("/notes.txt") }
            // Outside a container the volume is attached nowhere: commit() says so.
            #expect(throws: SiloError.self) { try volume.commit() }
        }
    }

    @Test(arguments: StoreSetup.all)
    func anEphemeralVolumeGoesWithItsBody(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let made = try await Volume.ephemeral(service: fixture.service) { volume in
                try await volume.batchUpload { try $0.putFile(bytes: [1, 2, 3], at: "/scratch.bin") }
                #expect(try await volume.iterdir("/").map(\.path) == ["scratch.bin"])
                return volume.name
            }
            await #expect(throws: SiloError.self) { _ = try await fixture.service.volume(made) }
        }
    }
}
