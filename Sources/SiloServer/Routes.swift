import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import SiloCore
import SiloStore
import SiloWire

/// The `/v1/` API over one ``VolumeStore``: every route sees only the authenticated token's workspace.
struct VolumeRoutes: Sendable {
    let store: VolumeStore
    let tokens: any TokenStore
    let configuration: ServerConfiguration
    let commits: CommitGate
    let uploads: UploadLimiter
    let memory: MemoryBudget
    let metrics = ServerMetrics()

    func register(on api: RouterGroup<SiloRequestContext>) {
        api.get("volumes") { _, context in
            JSONBody.response(try await store.metadata.listVolumes(workspace: context.workspace))
        }
        api.post("volumes") { request, context in
            let body = try await JSONBody.decode(API.VolumeNameBody.self, from: request, limit: configuration.maxJSONBytes)
            let author = String((body.author ?? context.token!.name).prefix(256))
            if let quota = configuration.workspaceMaxVolumes, try await store.metadata.listVolumes(workspace: context.workspace).count >= quota {
                throw SiloError(
                    .noSpace,
                    "workspace '\(context.workspace)' has its quota of \(quota) volume(s); delete one you no longer need or ask the server's admin for more"
                )
            }
            let info = try await store.createVolume(body.name, kind: body.kind ?? .snapshot, workspace: context.workspace, author: author)
            return JSONBody.response(info, status: .created)
        }
        api.get("volumes/:volume") { _, context in
            JSONBody.response(try await store.metadata.volume(try volume(context), workspace: context.workspace))
        }
        api.post("volumes/:volume/locks") { request, context in
            let call = try await JSONBody.decode(LockCall.self, from: request, limit: configuration.maxJSONBytes)
            let conflict = try await store.metadata.locks(call, in: try volume(context), workspace: context.workspace, now: VolumeStore.nowMilliseconds())
            return JSONBody.response(API.LockAnswer(conflict: conflict))
        }
        api.patch("volumes/:volume") { request, context in
            let body = try await JSONBody.decode(API.VolumeNameBody.self, from: request, limit: configuration.maxJSONBytes)
            let name = try volume(context)
            try await store.metadata.renameVolume(name, to: body.name, workspace: context.workspace)
            return JSONBody.response(try await store.metadata.volume(body.name, workspace: context.workspace))
        }
        api.delete("volumes/:volume") { _, context in
            try await store.deleteVolume(try volume(context), workspace: context.workspace)
            return Response(status: .noContent)
        }
        api.get("volumes/:volume/versions") { _, context in
            JSONBody.response(try await store.metadata.history(of: try volume(context), workspace: context.workspace))
        }
        api.get("volumes/:volume/entry") { request, context in
            let path = try Query.path(request)
            guard let entry = try await store.metadata.entry(
                at: path, in: try volume(context), workspace: context.workspace, version: try Query.version(request)
            ) else {
                throw SiloError(.pathNotFound, "\(path) does not exist in volume '\(try volume(context))'")
            }
            return JSONBody.response(entry)
        }
        api.get("volumes/:volume/list") { request, context in
            JSONBody.response(
                try await store.metadata.list(
                    try Query.path(request), in: try volume(context), workspace: context.workspace, version: try Query.version(request)
                )
            )
        }
        api.get("volumes/:volume/tree") { request, context in
            JSONBody.response(
                try await store.metadata.tree(
                    try Query.path(request), in: try volume(context), workspace: context.workspace, version: try Query.version(request)
                )
            )
        }
        api.get("volumes/:volume/changes") { request, context in
            guard let from = try Query.version(request, "from"), let to = try Query.version(request, "to") else {
                throw SiloError(.invalidArgument, "changes need both 'from' and 'to' versions")
            }
            return JSONBody.response(
                try await store.metadata.changes(in: try volume(context), workspace: context.workspace, from: from, to: to)
            )
        }
        api.get("volumes/:volume/file") { request, context in
            try await downloadFile(request, context)
        }
        api.post("volumes/:volume/commits") { request, context in
            try await commit(request, context)
        }
        api.post("blocks/missing") { request, context in
            let body = try await JSONBody.decode(API.Hashes.self, from: request, limit: configuration.maxJSONBytes)
            return JSONBody.response(API.Missing(missing: try await store.missingBlocks(body.hashes, workspace: context.workspace)))
        }
        api.put("blocks/:hash") { request, context in
            try await uploadBlock(request, context)
        }
        api.get("blocks/:hash") { request, context in
            let block = try await store.readBlock(try hash(context), workspace: context.workspace)
            return try ranged(request, size: Int64(block.bytes.count)) { range in
                metrics.bytesOut.increment(by: Int64(range.count))
                return ByteBuffer(bytes: block.bytes[Int(range.lowerBound)..<Int(range.upperBound)])
            }
        }
        registerTokens(on: api)
    }

    // MARK: Commits and blocks

    private func commit(_ request: Request, _ context: SiloRequestContext) async throws -> Response {
        // Admitted as soon as it arrives, before its body is read: a commit the server has begun to
        // receive when SIGTERM comes is in flight, and finishes, however long its body takes.
        try await commits.admit { try await admittedCommit(request, context) }
    }

    private func admittedCommit(_ request: Request, _ context: SiloRequestContext) async throws -> Response {
        let name = try volume(context)
        // The body and what it decodes to are in memory together until the commit is applied.
        let reserved = 2 * MemoryBudget.size(of: request, limit: configuration.maxCommitBytes)
        try memory.reserve(reserved)
        defer { memory.release(reserved) }
        let body = try await JSONBody.decode(API.CommitRequest.self, from: request, limit: configuration.maxCommitBytes)
        guard !body.commitID.isEmpty, body.commitID.utf8.count <= 128 else {
            throw SiloError(.invalidArgument, "commitID must be 1 to 128 bytes (a UUID is a good choice)")
        }
        let author = String((body.author.flatMap { $0.isEmpty ? nil : $0 } ?? context.token!.name).prefix(256))
        let result = try await store.commit(
            Changeset(body.changes), to: name, workspace: context.workspace,
            options: CommitOptions(author: author, commitID: body.commitID)
        )
        if !result.wasRetry { metrics.commits.increment() }
        context.logger.info(
            "commit",
            metadata: [
                "volume": "\(name)", "version": "\(result.version.version)", "changes": "\(body.changes.count)",
                "retry": "\(result.wasRetry)",
            ]
        )
        return JSONBody.response(result, status: result.wasRetry ? .ok : .created)
    }

    private func uploadBlock(_ request: Request, _ context: SiloRequestContext) async throws -> Response {
        let expected = try hash(context)
        let tokenID = context.token!.id
        try await uploads.acquire(tokenID)
        // The body streams into the block's own bytes, chunk by chunk: its size once, at the peak.
        let reserved = MemoryBudget.size(of: request, limit: BlockLayout.allowedBlockSizes.upperBound)
        do {
            try memory.reserve(reserved)
        } catch {
            await uploads.release(tokenID)
            throw error
        }
        defer { memory.release(reserved) }
        do {
            let bytes = try await Self.bytes(of: request, upTo: BlockLayout.allowedBlockSizes.upperBound, expecting: reserved)
            metrics.bytesIn.increment(by: Int64(bytes.count))
            let block = try Block(bytes: bytes, expected: expected)
            try await store.putBlock(block, workspace: context.workspace, byteQuota: configuration.workspaceMaxBytes)
            metrics.blocksStored.increment()
            await uploads.release(tokenID)
            return Response(status: .noContent)
        } catch {
            await uploads.release(tokenID)
            throw error
        }
    }

    /// A request's body as bytes, appended chunk by chunk as they arrive (no second copy of the whole),
    /// refused past `limit`.
    static func bytes(of request: Request, upTo limit: Int, expecting length: Int) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(length)
        for try await chunk in request.body {
            guard bytes.count + chunk.readableBytes <= limit else {
                throw SiloError(.tooLarge, "the request body is over the server's limit for this call (\(limit) bytes)")
            }
            bytes.append(contentsOf: chunk.readableBytesView)
        }
        return bytes
    }

    /// The bytes of a file at a version, streamed block by block; honours a single `Range`.
    private func downloadFile(_ request: Request, _ context: SiloRequestContext) async throws -> Response {
        let name = try volume(context)
        let path = try Query.path(request)
        guard let entry = try await store.metadata.entry(
            at: path, in: name, workspace: context.workspace, version: try Query.version(request)
        ) else {
            throw SiloError(.pathNotFound, "\(path) does not exist in volume '\(name)'")
        }
        guard entry.kind == .file, let content = entry.content else {
            throw SiloError(
                entry.kind == .directory ? .isADirectory : .invalidArgument, "\(path) is a \(entry.kind.rawValue), not a file"
            )
        }
        let range = try ByteRange.resolve(request.headers[.range], size: entry.size)
        let wanted = range ?? 0..<entry.size
        var headers: HTTPFields = [
            .contentType: "application/octet-stream", .acceptRanges: "bytes", .eTag: "\"v\(entry.version.rawValue)\"",
        ]
        if range != nil {
            headers[.contentRange] = "bytes \(wanted.lowerBound)-\(wanted.upperBound - 1)/\(entry.size)"
        }
        let store = self.store
        let workspace = context.workspace
        let metrics = self.metrics
        let body = ResponseBody(contentLength: Int(wanted.count)) { writer in
            switch content {
            case .inline(let bytes):
                try await writer.write(ByteBuffer(bytes: bytes[Int(wanted.lowerBound)..<Int(wanted.upperBound)]))
            case .blocks(let hashes, let blockSize):
                guard !wanted.isEmpty else { break }
                let layout = BlockLayout(blockSize: blockSize)
                for index in layout.blocks(covering: wanted) {
                    let block = try await store.readBlock(hashes[index], workspace: workspace)
                    // Commits check block lengths against sizes; a store written before they did
                    // may still hold a file whose blocks are shorter than it says.
                    guard block.bytes.count == layout.length(ofBlock: index, inFileOf: entry.size) else {
                        throw SiloError(.corruptBlock, "\(path) is damaged: block \(index) has \(block.bytes.count) bytes, not the file's block size")
                    }
                    let start = Int64(index) * Int64(blockSize)
                    let from = Int(max(wanted.lowerBound, start) - start)
                    let to = Int(min(wanted.upperBound, start + Int64(block.bytes.count)) - start)
                    try await writer.write(ByteBuffer(bytes: block.bytes[from..<to]))
                }
            }
            metrics.bytesOut.increment(by: Int64(wanted.count))
            try await writer.finish(nil)
        }
        return Response(status: range == nil ? .ok : .partialContent, headers: headers, body: body)
    }

    private func ranged(_ request: Request, size: Int64, _ bytes: (Range<Int64>) -> ByteBuffer) throws -> Response {
        let range = try ByteRange.resolve(request.headers[.range], size: size)
        let wanted = range ?? 0..<size
        var headers: HTTPFields = [.contentType: "application/octet-stream", .acceptRanges: "bytes"]
        if range != nil {
            headers[.contentRange] = "bytes \(wanted.lowerBound)-\(wanted.upperBound - 1)/\(size)"
        }
        return Response(status: range == nil ? .ok : .partialContent, headers: headers, body: .init(byteBuffer: bytes(wanted)))
    }

    // MARK: Tokens

    /// Tokens, by role: an admin manages its own workspace's tokens (up to admin); a server admin
    /// manages every workspace's, and may make other server admins.
    private func registerTokens(on api: RouterGroup<SiloRequestContext>) {
        api.post("tokens") { request, context in
            let caller = try requireAdmin(context)
            let body = try await JSONBody.decode(API.TokenRequest.self, from: request, limit: configuration.maxJSONBytes)
            let name = body.name ?? "token"
            guard name.utf8.count <= 128 else { throw SiloError(.invalidArgument, "a token name has at most 128 bytes") }
            let workspace = try scope(body.workspace, for: caller) ?? caller.workspace
            let role = body.role ?? .member
            guard role <= .admin || caller.role == .serverAdmin else {
                throw SiloError(.forbidden, "only a server admin can make a server admin token")
            }
            let token = try await tokens.create(workspace: workspace, name: name, role: role, now: VolumeStore.nowMilliseconds())
            context.logger.info(
                "token created", metadata: ["id": "\(token.id)", "for": "\(token.workspace)", "role": "\(role.rawValue)", "by": "\(caller.id)"]
            )
            return JSONBody.response(token, status: .created)
        }
        api.get("tokens") { request, context in
            let caller = try requireAdmin(context)
            let workspace = try scope(try Query.value(request, "workspace"), for: caller)
            return JSONBody.response(try await tokens.list(workspace: workspace))
        }
        api.delete("tokens/:id") { _, context in
            let caller = try requireAdmin(context)
            let all = caller.role == .serverAdmin
            try await tokens.revoke(
                id: try context.parameters.require("id"), workspace: all ? nil : caller.workspace, upTo: all ? .serverAdmin : .admin
            )
            context.logger.info("token revoked", metadata: ["by": "\(caller.id)"])
            return Response(status: .noContent)
        }
    }

    private func requireAdmin(_ context: SiloRequestContext) throws(SiloError) -> API.Token {
        guard let token = context.token, token.role >= .admin else {
            throw SiloError(
                .forbidden,
                "managing tokens needs an admin token of this workspace (`silo token create --role admin`, made by an admin)"
            )
        }
        return token
    }

    /// The workspace a token call acts on: any (nil) or the one asked for, for a server admin; the
    /// caller's own for an admin, who may not name another.
    private func scope(_ workspace: String?, for caller: API.Token) throws(SiloError) -> String? {
        if let workspace { try TokenSecret.validateWorkspace(workspace) }
        guard caller.role != .serverAdmin else { return workspace }
        guard workspace == nil || workspace == caller.workspace else {
            throw SiloError(
                .forbidden,
                "an admin token manages its own workspace ('\(caller.workspace)') only; another workspace's tokens need a server admin"
            )
        }
        return caller.workspace
    }

    // MARK: Parameters

    private func volume(_ context: SiloRequestContext) throws -> VolumeName {
        try VolumeName(try context.parameters.require("volume"))
    }

    private func hash(_ context: SiloRequestContext) throws -> BlockHash {
        try BlockHash(hex: try context.parameters.require("hash"))
    }
}

/// Query parameters of the API, validated.
enum Query {
    static func path(_ request: Request) throws(SiloError) -> VolumePath {
        try VolumePath(try value(request, "path") ?? "")
    }

    static func version(_ request: Request, _ name: String = "version") throws(SiloError) -> Version? {
        guard let text = try value(request, name) else { return nil }
        guard let number = Int64(text), number >= 0 else {
            throw SiloError(.invalidArgument, "'\(name)' must be a version number (0 or more), not '\(text.prefix(40).escapedForDisplay)'")
        }
        return Version(number)
    }

    /// The first value of query parameter `name`, decoded, or nil when it is absent.
    static func value(_ request: Request, _ name: String) throws(SiloError) -> String? {
        guard let query = request.uri.query else { return nil }
        do {
            return try QueryString(query).value(name)
        } catch {
            throw SiloError(.invalidArgument, "query parameter '\(name)' is not percent-encoded UTF-8")
        }
    }
}

/// The server's own figures, beside the per-request ones from `MetricsMiddleware`.
struct ServerMetrics: Sendable {
    let bytesIn = Counter(label: "silo_bytes_in")
    let bytesOut = Counter(label: "silo_bytes_out")
    let commits = Counter(label: "silo_commits")
    let blocksStored = Counter(label: "silo_blocks_stored")
}
