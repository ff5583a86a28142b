import ArgumentParser

@main
struct Silo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "silo",
        abstract: "Named, persistent, versioned volumes.",
        discussion: """
            With no server configured, silo keeps volumes in an embedded store under $SILO_HOME \
            (default: ~/.local/share/silo). With SILO_SERVER=http://HOST:PORT and SILO_TOKEN set, \
            every command works the same against that server (`silo serve`).
            """,
        version: "0.1.0",
        subcommands: [
            VolumeCommand.self, NfsCommand.self, Mount.self, Umount.self, Run.self, ContainerCommand.self, Serve.self, TokenCommand.self, CacheCommand.self,
            UnmountGuardCommand.self,
        ]
    )
}
