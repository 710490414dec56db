// The proxy's listening sockets: the public mTLS listener and one plain listener per upstream,
// reconciled against the current config (a changed address or port rebinds; others stay open;
// a changed `threads` rebinds them all on a group of that size), and the metrics listener.

import Logging
import NIOCore
import NIOPosix
import NIOSSL

actor ListenerSet {
    private enum Key: Hashable {
        case publicListener(PublicListenerConfig, target: String)
        case upstream(UpstreamConfig)
        case metrics(MetricsAddress)
    }

    private enum Lifecycle { case running, stopped }

    /// The proxy's own loop (agent calls), also the listeners' while `threads` is 1.
    private let group: any EventLoopGroup
    /// The listeners' group when `threads` > 1.
    private var dataGroup: MultiThreadedEventLoopGroup?
    private var threads = 1
    /// Groups left behind by a change of `threads`: their connections finish, shut down at the end.
    private var retired: [MultiThreadedEventLoopGroup] = []
    private let runtime: ProxyRuntime
    private let agent: AgentClient
    private let metrics: ProxyMetrics
    private let logger: Logger
    private var channels: [Key: any Channel] = [:]
    private var lifecycle = Lifecycle.running

    init(group: any EventLoopGroup, runtime: ProxyRuntime, agent: AgentClient, metrics: ProxyMetrics, logger: Logger) {
        self.group = group
        self.metrics = metrics
        self.runtime = runtime
        self.agent = agent
        self.logger = logger
    }

    /// Binds what `config` asks for that is not bound yet and closes what it no longer asks for.
    func apply(_ config: ProxyConfig) async {
        guard lifecycle == .running else { return }
        if config.threads != threads {
            for channel in channels.values { try? await channel.close() }
            channels.removeAll()
            if let dataGroup { retired.append(dataGroup) }
            dataGroup = config.threads > 1 ? MultiThreadedEventLoopGroup(numberOfThreads: config.threads) : nil
            threads = config.threads
            logger.info("listeners on \(threads) event-loop thread(s)")
        }
        var desired: Set<Key> = Set(config.upstreams.map { .upstream($0) })
        if let listener = config.publicListener { desired.insert(.publicListener(listener, target: config.targetServiceName)) }
        if let address = config.prometheusBindAddress { desired.insert(.metrics(address)) }
        for (key, channel) in channels where !desired.contains(key) {
            channels.removeValue(forKey: key)
            try? await channel.close()
            logger.info("closed listener", metadata: ["listener": "\(Self.describe(key))"])
        }
        for key in desired where channels[key] == nil {
            do {
                channels[key] = try await bind(key)
                logger.info("listening", metadata: ["listener": "\(Self.describe(key))"])
            } catch {
                logger.error("cannot listen", metadata: ["listener": "\(Self.describe(key))", "error": "\(error)"])
            }
        }
    }

    /// Closes every listener; open connections are left to finish.
    func stop() async {
        lifecycle = .stopped
        for channel in channels.values { try? await channel.close() }
        channels.removeAll()
    }

    /// Shuts the listeners' own groups down (after `stop` and the grace).
    func shutdown() async {
        for group in retired + (dataGroup.map { [$0] } ?? []) { try? await group.shutdownGracefully() }
        retired = []
        dataGroup = nil
    }

    private static func describe(_ key: Key) -> String {
        switch key {
        case .publicListener(let listener, let target):
            "public \(listener.bindAddress):\(listener.bindPort) -> \(target) at \(listener.localServiceHost):\(listener.localServicePort)"
        case .upstream(let upstream):
            "upstream \(upstream.localBindAddress):\(upstream.localBindPort) -> \(upstream.destinationName)"
        case .metrics(let address):
            "metrics \(address) (GET /metrics)"
        }
    }

    private func bind(_ key: Key) async throws -> any Channel {
        let runtime = runtime
        let agent = agent
        let logger = logger
        let metrics = metrics
        let bootstrap = ServerBootstrap(group: dataGroup ?? group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
        switch key {
        case .publicListener(let listener, let target):
            let counts = metrics.listener("public")
            return try await bootstrap.childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let material = runtime.material else { throw ProxyNotReady() }
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: material.serverContext))
                    try channel.pipeline.syncOperations.addHandler(
                        InboundConnection(listener: listener, target: target, agent: agent, runtime: runtime, metrics: counts, logger: logger))
                    ConnectionCount.track(channel, runtime, counts)
                }
            }.bind(host: listener.bindAddress, port: listener.bindPort).get()
        case .upstream(let upstream):
            let counts = metrics.listener("upstream:\(upstream.destinationName)")
            let dials = metrics.upstream(upstream.destinationName)
            return try await bootstrap.childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        UpstreamConnection(upstream: upstream, runtime: runtime, agent: agent, metrics: counts, dials: dials, logger: logger))
                    ConnectionCount.track(channel, runtime, counts)
                }
            }.bind(host: upstream.localBindAddress, port: upstream.localBindPort).get()
        case .metrics(let address):
            // Scrapes are rare and small: always on the proxy's own loop.
            return try await MetricsEndpoint.bind(address, hub: metrics.hub, group: group)
        }
    }
}

struct ProxyNotReady: Error, CustomStringConvertible {
    var description: String { "no certificate yet" }
}

enum ConnectionCount {
    /// Counts `channel` as open until it closes (for the stop grace and the listener's metrics).
    static func track(_ channel: any Channel, _ runtime: ProxyRuntime, _ metrics: ListenerMetrics) {
        runtime.openConnections.add(1, ordering: .relaxed)
        metrics.accepted.increment()
        metrics.active.increment()
        channel.closeFuture.whenComplete { _ in
            runtime.openConnections.subtract(1, ordering: .relaxed)
            metrics.active.decrement()
        }
    }
}
