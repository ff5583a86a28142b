import Foundation
import SiloClient
import SiloCore
import SiloTesting
import Testing

@Suite(.timeLimit(.minutes(5))) struct TransferTests {
    @Test(arguments: StoreSetup.all)
    func aDirectoryRoundTripsThroughPutAndGet(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            let name = try VolumeName("data")
            _ = try await service.createVolume(name)
            let local = try TemporaryDirectory("silo-local")
            defer { local.remove() }
            let big = pseudoRandomBytes(count: 300_000, seed: 5)
            try local.write("src/big.bin", big)
            try local.write("src/small.txt", "small")
            try local.write("src/nested/deep/file", "deep")
            try FileManager.default.createDirectory(atPath: local.file("src/empty"), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: local.file("src/link"), withDestinationPath: "small.txt")

            // A small block size so the big file spans several blocks handled by several workers.
            let uploader = Uploader(service: service, layout: BlockLayout(blockSize: 64 * 1024), workers: 3)
            let target = try await uploader.resolveTarget(local: local.file("src"), remote: nil, in: name)
            #expect(target.rawValue == "src")
            let put = try await uploader.put(local: local.file("src"), to: target, in: name, force: false, options: CommitOptions(author: "t"))
            #expect(put.files == 3)
            #expect(put.commit.version.version == 1)
            let entry = try await service.entry(at: try VolumePath("src/big.bin"), in: name, version: nil)
            #expect(entry?.content?.blockHashes.count == 5)

            let result = try await Downloader(service: service).get(try VolumePath("src"), in: name, version: nil, to: local.file("out"), force: false)
            #expect(result.files == 4)
            #expect(try local.read("out/big.bin") == big)
            #expect(try local.read("out/nested/deep/file") == Array("deep".utf8))
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: local.file("out/link")) == "small.txt")
            var isDirectory: ObjCBool = false
            #expect(FileManager.default.fileExists(atPath: local.file("out/empty"), isDirectory: &isDirectory) && isDirectory.boolValue)

            // Putting again refuses to overwrite, changes nothing, and names the clash.
            let clash = await #expect(throws: SiloError.self) {
                try await uploader.put(local: local.file("src"), to: target, in: name, force: false, options: CommitOptions(author: "t"))
            }
            #expect(clash?.code == .pathExists)
            #expect(try await service.volume(name).latestVersion == 1)
            try local.write("src/small.txt", "changed")
            _ = try await uploader.put(local: local.file("src"), to: target, in: name, force: true, options: CommitOptions(author: "t"))
            #expect(try await service.text("src/small.txt", in: name) == "changed")
            #expect(try await service.text("src/small.txt", in: name, version: 1) == "small")
        }
    }

    @Test(arguments: StoreSetup.all)
    func rangesReadExactlyTheBytesAsked(setup: StoreSetup) async throws {
        try await StoreFixture.with(setup) { fixture in
            let service = fixture.service
            let name = try VolumeName("ranges")
            _ = try await service.createVolume(name)
            let bytes = pseudoRandomBytes(count: 10_000, seed: 6)
            let content = try await service.uploadBlocks(bytes, blockSize: 1000)
            _ = try await service.commit(Changeset([
                .put(try VolumePath("f"), FilePut(content: content, size: 10_000, mtimeNanoseconds: 0)),
            ]), to: name, options: CommitOptions(author: "t"))
            let path = try VolumePath("f")
            for range: Range<Int64> in [0..<1, 999..<1001, 0..<10_000, 2500..<7777, 9999..<10_000, 9000..<20_000] {
                let expected = Array(bytes[Int(range.lowerBound)..<Int(min(range.upperBound, 10_000))])
                #expect(try await service.read(path, in: name, range: range) == expected)
            }
        }
    }
}
