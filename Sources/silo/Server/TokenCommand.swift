import ArgumentParser
import SiloClient
import SiloCore
import SiloWire

extension TokenRole: ExpressibleByArgument {}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Manage a server's access tokens (needs SILO_SERVER and an admin SILO_TOKEN).",
        discussion: """
            Roles: a member reads and writes its workspace's volumes; an admin also manages its own workspace's \
            tokens; a server admin (the server makes the first one, in DATA/admin-token) manages every workspace's.
            """,
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token for a workspace and print it; it is not shown again."
        )

        @Option(help: "The workspace the token sees: its volumes and blocks, no other (default: your token's own).")
        var workspace: String?

        @Option(help: "A name for listings.")
        var name: String?

        @Option(help: "member, admin (manages its workspace's tokens) or server-admin (manages every workspace's).")
        var role: TokenRole = .member

        @Flag(help: "The same as --role admin.")
        var admin = false

        func run() async throws {
            try await SiloEnvironment.withTokens { server in
                let token = try await server.createToken(workspace: workspace, name: name, role: admin ? max(role, .admin) : role)
                Output.line(token.token ?? "")
                Output.note("token \(token.id) for workspace '\(token.workspace)'; keep it secret, it is shown only now")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List live tokens (never their secrets).")

        @Option(help: "Only this workspace's tokens.")
        var workspace: String?

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func run() async throws {
            try await SiloEnvironment.withTokens { server in
                let tokens = try await server.listTokens(workspace: workspace)
                if json {
                    try Output.json(tokens)
                } else {
                    Output.table(
                        ["ID", "WORKSPACE", "NAME", "ROLE", "CREATED"],
                        tokens.map {
                            [$0.id, $0.workspace, $0.name, $0.role.rawValue, Output.time(milliseconds: $0.createdAtMilliseconds)]
                        }
                    )
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token by id; requests with it fail from now on.")

        @Argument(help: "The token's id, as `silo token list` shows it.")
        var id: String

        func run() async throws {
            try await SiloEnvironment.withTokens { server in
                try await server.revokeToken(id: id)
                Output.note("revoked token \(id)")
            }
        }
    }
}
