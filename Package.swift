// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "silo",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "silo", targets: ["silo"]),
        .library(name: "SiloCore", targets: ["SiloCore"]),
        .library(name: "SiloStore", targets: ["SiloStore"]),
        .library(name: "SiloClient", targets: ["SiloClient"]),
        .library(name: "SiloFUSE", targets: ["SiloFUSE"]),
        .library(name: "SiloRuntime", targets: ["SiloRuntime"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // SHA-256 from the system's OpenSSL (libcrypto uses SHA-NI where the CPU has it).
        .target(
            name: "CSiloCrypto",
            linkerSettings: [.linkedLibrary("crypto")]
        ),
        // The kernel's FUSE ABI (linux/fuse.h) and the ioctl and mount calls Swift cannot make directly.
        .target(name: "CSiloFUSE"),
        // Process and file plumbing Swift cannot call directly: spawn actions, signal forwarding,
        // SCM_RIGHTS, copy_file_range.
        .target(name: "CSiloSystem"),
        .target(
            name: "SiloFUSE",
            dependencies: ["CSiloFUSE", "CSiloSystem"],
            swiftSettings: strict
        ),
        .target(
            name: "SiloMount",
            dependencies: ["SiloFUSE", "SiloClient", "SiloCore", "SiloWire", "CSiloSystem"],
            swiftSettings: strict
        ),
        // What runs on a machine beside the CLI: volumes attached at paths (FUSE session, control
        // socket, unmount guard, background commits) and containers (supervisor, records).
        .target(
            name: "SiloRuntime",
            dependencies: ["SiloMount", "SiloFUSE", "SiloClient", "SiloCore", "SiloWire", "CSiloSystem"],
            swiftSettings: strict
        ),
        .target(
            name: "SiloCore",
            dependencies: ["CSiloCrypto"],
            swiftSettings: strict
        ),
        // What travels over HTTP: request and response bodies, and the parsers of headers and query
        // strings. Small and free of the server, so its randomized tests build without Hummingbird.
        .target(
            name: "SiloWire",
            dependencies: ["SiloCore"],
            swiftSettings: strict
        ),
        .target(
            name: "SiloStore",
            dependencies: [
                "SiloCore",
                "SiloWire",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SiloClient",
            dependencies: [
                "CSiloSystem",
                "SiloCore",
                "SiloWire",
                "SiloStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SiloServer",
            dependencies: [
                "SiloCore",
                "SiloWire",
                "SiloStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("openapi.json")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "silo",
            dependencies: [
                "CSiloSystem",
                "SiloCore",
                "SiloWire",
                "SiloClient",
                "SiloServer",
                "SiloMount",
                "SiloRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "silo-bench",
            dependencies: [
                "SiloCore",
                "SiloStore",
                "SiloClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/silo-bench",
            swiftSettings: strict
        ),
        .target(
            name: "SiloTesting",
            dependencies: ["SiloCore", "SiloStore", "SiloClient"],
            swiftSettings: strict
        ),
        .testTarget(name: "SiloCoreTests", dependencies: ["SiloCore", "SiloTesting"], swiftSettings: strict),
        .testTarget(
            name: "SiloWireTests",
            dependencies: ["SiloWire", .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SiloStoreTests",
            dependencies: ["SiloStore", "SiloTesting", .product(name: "SQLKit", package: "sql-kit")],
            swiftSettings: strict
        ),
        .testTarget(name: "SiloClientTests", dependencies: ["SiloClient", "SiloTesting"], swiftSettings: strict),
        .testTarget(name: "SiloFUSETests", dependencies: ["SiloFUSE", "SiloMount", "SiloTesting"], swiftSettings: strict),
        .testTarget(name: "SiloMountTests", dependencies: ["SiloMount", "SiloTesting"], swiftSettings: strict),
        .testTarget(name: "SiloRuntimeTests", dependencies: ["SiloRuntime", "SiloTesting"], swiftSettings: strict),
        .testTarget(name: "SiloServerTests", dependencies: ["SiloServer", "SiloTesting"], swiftSettings: strict),
        .testTarget(
            name: "SiloCLITests",
            dependencies: [
                "SiloTesting",
                "SiloClient",
                "SiloMount",
                "SiloRuntime",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strict
        ),
    ]
)
