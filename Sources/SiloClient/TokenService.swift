import SiloWire

/// A server's access tokens, as a client manages them: beside ``VolumeService``, and only where there
/// is a server (the embedded store has no tokens). ``RemoteVolumeService`` is one.
public protocol TokenService: Sendable {
    /// Creates a token of `role` for `workspace` (the caller's own when nil); the answer carries the
    /// secret, which is never shown again.
    func createToken(workspace: String?, name: String?, role: TokenRole) async throws -> API.Token
    /// Live tokens of `workspace` (of every workspace the caller may manage when nil), without secrets.
    func listTokens(workspace: String?) async throws -> [API.Token]
    /// Revokes a token by id.
    func revokeToken(id: String) async throws
    func close() async throws
}

extension RemoteVolumeService: TokenService {}
