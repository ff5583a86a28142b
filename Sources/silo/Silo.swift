import ArgumentParser

@main
struct Silo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "silo",
        abstract: "Named, persistent, versioned volumes.",
        discussion: """
            With no server configured, silo keeps volumes in an embedded store under $SILO_HOME \
            (default: ~/.local/share/silo).
            """,
        version: "0.1.0",
        subcommands: [VolumeCommand.self]
    )
}
