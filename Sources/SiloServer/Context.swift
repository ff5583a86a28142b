import Foundation
import Hummingbird
import Logging
import NIOCore
import SiloCore
import SiloWire
import SiloStore

/// Per request: the token the request authenticated with, once ``AuthMiddleware`` has run.
struct SiloRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var token: API.Token?

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.token = nil
    }

    /// The workspace of the authenticated token. Routes behind ``AuthMiddleware`` only.
    var workspace: String { token!.workspace }
}

/// Turns every error a handler throws into a JSON `{code, message}` body with the matching status.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = SiloRequestContext
    /// Named in the server's log, never in answers: a client learns nothing of the server's disks.
    let privatePaths: [String]

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let siloError = Self.siloError(for: error)
            let status = Self.status(for: siloError.code)
            if status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(siloError.message)", "code": "\(siloError.code)"])
            }
            var headers: HTTPFields = [.contentType: "application/json"]
            if siloError.code == .tooManyRequests || siloError.code == .unavailable {
                headers[.retryAfter] = "1"
            }
            if let range = error as? RangeNotSatisfiable {
                headers[.contentRange] = "bytes */\(range.size)"
            }
            if siloError.code == .unauthorized {
                headers[.wwwAuthenticate] = "Bearer"
            }
            var answer = siloError
            for path in privatePaths { answer.message = answer.message.replacingOccurrences(of: path, with: "DATA") }
            return Response(status: status, headers: headers, body: .init(byteBuffer: JSONBody.encode(API.ErrorBody(answer))))
        }
    }

    static func siloError(for error: any Error) -> SiloError {
        switch error {
        case let error as SiloError:
            return error
        case let error as RangeNotSatisfiable:
            return error.error
        case is NIOTooManyBytesError:
            return SiloError(.tooLarge, "the request body is over the server's limit for this call")
        case let error as DecodingError:
            return SiloError(.invalidArgument, "malformed request body: \(describe(error))")
        case let error as HTTPError:
            switch error.status {
            case .notFound: return SiloError(.notFound, "no such API route; see /v1/openapi.json")
            case .methodNotAllowed: return SiloError(.notFound, "this route does not take that method; see /v1/openapi.json")
            case .contentTooLarge: return SiloError(.tooLarge, "the request body is over the server's limit for this call")
            default:
                if error.status.code < 500 {
                    return SiloError(.invalidArgument, error.body ?? error.status.reasonPhrase)
                }
                return SiloError(.storage, error.body ?? error.status.reasonPhrase)
            }
        default:
            return SiloError(.storage, "internal error: \(error)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return keys.isEmpty ? "" : " at \(keys)"
        }
        switch error {
        case .dataCorrupted(let context):
            if let underlying = context.underlyingError as? SiloError { return underlying.message + path(context) }
            return context.debugDescription + path(context)
        case .keyNotFound(let key, let context):
            return "missing field '\(key.stringValue)'\(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            if let underlying = context.underlyingError as? SiloError { return underlying.message + path(context) }
            return context.debugDescription + path(context)
        @unknown default:
            return "\(error)"
        }
    }

    /// The one table from error codes to HTTP statuses.
    static func status(for code: SiloError.Code) -> HTTPResponse.Status {
        switch code {
        case .invalidName, .invalidPath, .invalidArgument, .notPermitted: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .volumeNotFound, .versionNotFound, .pathNotFound, .notFound: .notFound
        case .volumeExists, .pathExists, .conflict, .locked, .leaseLapsed, .notADirectory, .isADirectory, .directoryNotEmpty: .conflict
        case .missingBlock, .corruptBlock: .unprocessableContent
        case .tooLarge: .contentTooLarge
        case .invalidRange: .rangeNotSatisfiable
        case .tooManyRequests: .tooManyRequests
        case .noSpace: HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage")
        case .unavailable: .serviceUnavailable
        default: .internalServerError
        }
    }
}

/// Admits a request only with `Authorization: Bearer TOKEN` naming a live token.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = SiloRequestContext
    let tokens: any TokenStore

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let token = try await Self.authenticate(request, tokens: tokens)
        var context = context
        context.token = token
        context.logger[metadataKey: "workspace"] = .string(token.workspace)
        context.logger[metadataKey: "token"] = .string(token.id)
        return try await next(request, context)
    }
}

extension AuthMiddleware {
    /// The live token a request carries as `Authorization: Bearer TOKEN`.
    static func authenticate(_ request: Request, tokens: any TokenStore) async throws -> API.Token {
        guard let header = request.headers[.authorization] else {
            throw SiloError(.unauthorized, "no token: send 'Authorization: Bearer TOKEN' (the CLI reads SILO_TOKEN)")
        }
        let prefix = "Bearer "
        guard header.hasPrefix(prefix), header.utf8.count < 512 else {
            throw SiloError(.unauthorized, "the Authorization header must be 'Bearer TOKEN'")
        }
        guard let token = try await tokens.authenticate(String(header.dropFirst(prefix.count))) else {
            throw SiloError(.unauthorized, "the token is not valid (unknown or revoked); ask an admin for one (`silo token create`)")
        }
        return token
    }
}

/// JSON bodies in and out.
enum JSONBody {
    static func encode(_ value: some Encodable) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding the API's own types cannot fail.
        return ByteBuffer(data: try! encoder.encode(value))
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: encode(value)))
    }

    static func decode<T: Decodable>(_ type: T.Type, from request: Request, limit: Int) async throws -> T {
        let buffer = try await request.body.collect(upTo: limit)
        return try JSONDecoder().decode(T.self, from: Data(buffer: buffer))
    }
}
