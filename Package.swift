// swift-tools-version: 6.2
// connectd: a systemd-native supervisor for Consul Connect managed proxies.
import PackageDescription

let package = Package(
    name: "connectd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "connectd", targets: ["connectd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Shared primitives with no agent knowledge: JSON values, Go durations, SPIFFE IDs,
        // colon-hex, RFC 3339 times, sockets.
        .target(name: "ConnectdCore"),
        // The durable store interface and its transactional file store; IndexWatch and blocking queries.
        .target(name: "AgentStore", dependencies: [
            "ConnectdCore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "HeapModule", package: "swift-collections"),
        ]),
        // Config model, file/dir loading, merging and validation.
        .target(name: "AgentConfig", dependencies: ["ConnectdCore"]),
        // One process's metrics: swift-metrics handlers into swift-prometheus' registry and
        // Consul's in-memory intervals (`/v1/agent/metrics`), the catalog of names.
        .target(name: "Telemetry", dependencies: [
            "ConnectdCore",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // The built-in CA as policy over values: roots, signing, rotation, pruning; the leaf cache.
        .target(name: "CertificateAuthority", dependencies: [
            "ConnectdCore", "AgentStore", "AgentConfig",
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
        ]),
        // ACL tokens and rules, intentions, and the authorize decision.
        .target(name: "Authorization", dependencies: [
            "ConnectdCore", "AgentStore", "AgentConfig",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The one owner of durable truth: services, proxies, intentions and the CA in one snapshot.
        .target(name: "AgentState", dependencies: [
            "ConnectdCore", "AgentStore", "AgentConfig", "CertificateAuthority", "Authorization",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // etcd v3 through its JSON gateway over HTTP/1.1: typed wire messages, endpoint failover,
        // authentication (fleet mode's store talks to etcd only through this).
        .target(name: "EtcdClient", dependencies: [
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOFoundationCompat", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // `connectd proxy`: the built-in mTLS proxy (public listener, upstream listeners).
        // Fleet mode: the view of etcd, the host's catalog entries and lease, shared intentions, the
        // per-host intermediate CA.
        .target(name: "Fleet", dependencies: [
            "EtcdClient", "AgentState", "AgentStore", "AgentConfig", "Authorization", "CertificateAuthority", "ConnectdCore",
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .target(name: "ConnectProxy", dependencies: [
            "ConnectdCore", "CProcShims", "Telemetry",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ]),
        // libsystemd (sd_notify, watchdog, listen fds, journal streams).
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // connectd's side of the systemd service contract.
        .target(name: "SystemdSupport", dependencies: ["CSystemd"]),
        // pidfd calls Swift's Glibc module does not expose.
        .target(name: "CProcShims"),
        // Spawns, restarts, stops and re-adopts managed proxy processes; their logs.
        .target(name: "ProxySupervisor", dependencies: [
            "ConnectdCore", "AgentStore", "AgentConfig", "AgentState", "CProcShims", "SystemdSupport",
            .product(name: "Subprocess", package: "swift-subprocess"),
            .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Runs the agent's health checks (tcp, http, script; ttl expiry) into the CheckBoard.
        .target(name: "HealthChecks", dependencies: [
            "AgentConfig", "AgentState", "ConnectdCore",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Subprocess", package: "swift-subprocess"),
            .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The Consul-compatible HTTP API.
        .target(name: "AgentHTTP", dependencies: [
            "ConnectdCore", "AgentStore", "AgentConfig", "AgentState", "CertificateAuthority", "Authorization", "Telemetry",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "CompressNIO", package: "compress-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Composition root: wires config, state and HTTP; owns lifecycle and signals.
        .target(name: "ConnectdAgent", dependencies: [
            "ConnectdCore", "AgentStore", "AgentConfig", "AgentState", "AgentHTTP", "ProxySupervisor", "SystemdSupport", "CertificateAuthority", "Authorization", "Fleet", "EtcdClient", "Telemetry", "HealthChecks",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "connectd", dependencies: [
            "ConnectdCore", "AgentConfig", "ConnectdAgent", "SystemdSupport", "ConnectProxy",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The floor for the HTTP benchmarks: a bare SwiftNIO server answering a constant body.
        .executableTarget(name: "bench-constant-server", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ], path: "bench/ConstantServer"),
        .testTarget(name: "ConnectdCoreTests", dependencies: ["ConnectdCore"]),
        .testTarget(name: "AgentConfigTests", dependencies: ["AgentConfig", "ConnectdCore"]),
        .testTarget(name: "TelemetryTests", dependencies: [
            "Telemetry", "AgentConfig", "ConnectdCore", .product(name: "CoreMetrics", package: "swift-metrics"),
        ]),
        .testTarget(name: "CertificateAuthorityTests", dependencies: ["CertificateAuthority", "AgentStore", "AgentState", "AgentConfig", "ConnectdCore", "TestSupport",
                                                                 .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "AuthorizationTests", dependencies: [
            "Authorization", "AgentStore", "AgentState", "AgentConfig", "ConnectdCore", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "AgentStateTests", dependencies: [
            "AgentStore", "AgentState", "AgentConfig", "ConnectdCore", "Authorization", "CertificateAuthority",
        ]),
        .testTarget(name: "AgentHTTPTests", dependencies: [
            "ConnectdAgent", "AgentHTTP", "AgentStore", "AgentState", "AgentConfig", "ConnectdCore", "TestSupport",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "ConnectProxyTests", dependencies: [
            "ConnectProxy",
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "ProxySupervisorTests", dependencies: [
            "ProxySupervisor", "AgentStore", "AgentState", "AgentConfig", "ConnectdCore",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "EndToEndTests", dependencies: ["connectd", "TestSupport"]),
        .testTarget(name: "FleetModuleTests", dependencies: [
            "Fleet", "EtcdClient", "CertificateAuthority", "ConnectdCore",
            .product(name: "X509", package: "swift-certificates"), .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // What several test targets need: a real 3-member etcd cluster, running a process.
        .target(name: "TestSupport", dependencies: ["ConnectdCore"], path: "Tests/TestSupport"),
        .testTarget(name: "EtcdClientTests", dependencies: [
            "EtcdClient", "ConnectdCore", "TestSupport", .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
