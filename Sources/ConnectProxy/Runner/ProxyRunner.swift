// Runs `connectd proxy`: watches its config (hash), leaf and roots (index) on the agent, keeps
// the listeners in line with the config and the TLS material current, and stops on SIGTERM or
// SIGINT after a short grace for open connections. When the agent is unreachable it keeps
// serving with what it has and retries with backoff.

import ConnectdCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

public struct ProxyRunner: Sendable {
    public enum Mode: Sendable {
        /// A managed proxy: its config comes from `/v1/agent/connect/proxy/<id>`.
        case managed(proxyID: String)
        /// `-service` with flags: a fixed config.
        case unmanaged(ProxyConfig)

        /// The `proxy` label of its metrics.
        var metricsName: String {
            switch self {
            case .managed(let proxyID): proxyID
            case .unmanaged(let config): config.targetServiceName
            }
        }
    }

    let mode: Mode
    let agent: AgentClient
    let logger: Logger
    /// How long open connections may finish after a stop signal.
    let stopGrace: Duration

    public init(mode: Mode, agent: AgentClient, logger: Logger, stopGrace: Duration = .seconds(5)) {
        self.mode = mode
        self.agent = agent
        self.logger = logger
        self.stopGrace = stopGrace
    }

    /// The loop whose timers the watches' back-offs use (the proxy's own, once running).
    private var loop: (any EventLoop)?

    /// Runs until `stop` returns (a signal), then closes listeners and waits out the grace.
    /// `group` is the proxy's one event loop (for the agent calls, and for the listeners unless
    /// `config.threads` asks for more); without one, a group of one thread is made and shut down.
    public func run(on group: MultiThreadedEventLoopGroup? = nil, until stop: @escaping @Sendable () async -> Void) async throws {
        let owned = group == nil ? MultiThreadedEventLoopGroup(numberOfThreads: 1) : nil
        let group = group ?? owned!
        let metrics = ProxyMetrics(proxy: mode.metricsName)
        var runner = ProxyRunner(mode: mode, agent: agent.connected(on: group).reporting(failures: metrics.agentCallFailed),
                                 logger: logger, stopGrace: stopGrace)
        runner.loop = group.next()
        try await runner.serve(on: group, metrics: metrics, until: stop)
        await runner.agent.shutdown()
        try? await owned?.shutdownGracefully()
        logger.info("stopped")
    }

    /// Sleeps on the proxy's loop when it has one.
    private func pause(_ duration: Duration) async {
        if let loop { try? await loop.sleep(for: duration) } else { try? await Task.sleep(for: duration) }
    }

    private func serve(on group: MultiThreadedEventLoopGroup, metrics: ProxyMetrics,
                       until stop: @escaping @Sendable () async -> Void) async throws {
        let runtime = ProxyRuntime()
        metrics.collectLeafExpiry(runtime)
        let listeners = ListenerSet(group: group, runtime: runtime, agent: agent, metrics: metrics, logger: logger)
        let discovery = DiscoveryWatches(runner: self, runtime: runtime)

        let watchers = Task {
            await withTaskGroup(of: Void.self) { tasks in
                switch mode {
                case .managed(let proxyID):
                    tasks.addTask {
                        await watchConfig(proxyID: proxyID, runtime: runtime, listeners: listeners, discovery: discovery)
                    }
                case .unmanaged(let config):
                    runtime.set(config: config)
                    tasks.addTask { await discovery.update(config.upstreams) }
                    tasks.addTask { await watchCertificates(service: config.targetServiceName, runtime: runtime, listeners: listeners) }
                }
                tasks.addTask { await watchRoots(runtime: runtime, listeners: listeners) }
            }
        }
        await stop()
        logger.info("stopping: closing listeners")
        watchers.cancel()
        await discovery.update([])
        await listeners.stop()
        let clock = ContinuousClock()
        let deadline = clock.now + stopGrace
        while runtime.openConnections.load(ordering: .relaxed) > 0 && clock.now < deadline {
            await pause(.milliseconds(50))
        }
        let left = runtime.openConnections.load(ordering: .relaxed)
        if left > 0 { logger.info("stopping with open connections", metadata: ["connections": "\(left)"]) }
        await listeners.shutdown()
    }

    // MARK: - Watches

    private func watchConfig(proxyID: String, runtime: ProxyRuntime, listeners: ListenerSet, discovery: DiscoveryWatches) async {
        var hash = ""
        var leafWatch: Task<Void, Never>?
        var backoff = Backoff()
        while !Task.isCancelled {
            do {
                let target = "/v1/agent/connect/proxy/\(proxyID)" + (hash.isEmpty ? "" : "?hash=\(hash)&wait=5m")
                let (body, response) = try await agent.json(target, timeoutSeconds: 360, kind: .longPoll)
                backoff.reset()
                let newHash = response.header("X-Consul-Contenthash") ?? body["ContentHash"]?.stringValue ?? ""
                guard newHash != hash else { continue }
                hash = newHash
                let config = try ProxyConfig(agentAnswer: body)
                let previous = runtime.config
                runtime.set(config: config)
                if previous?.targetServiceName != config.targetServiceName {
                    leafWatch?.cancel()
                    leafWatch = Task { await watchCertificates(service: config.targetServiceName, runtime: runtime, listeners: listeners) }
                }
                logger.info("proxy config applied", metadata: ["hash": "\(hash)", "upstreams": "\(config.upstreams.count)"])
                await discovery.update(config.upstreams)
                if runtime.material != nil { await listeners.apply(config) }
            } catch {
                if Task.isCancelled { break }
                let wait = backoff.next()
                logger.warning("cannot read the proxy config; retrying", metadata: ["error": "\(error)", "retry_in": "\(wait)"])
                await pause(wait)
            }
        }
        leafWatch?.cancel()
    }

    private func watchCertificates(service: String, runtime: ProxyRuntime, listeners: ListenerSet) async {
        let intentions = Task { await watchIntentions(service: service, runtime: runtime) }
        defer { intentions.cancel() }
        await watchIndexed(path: "/v1/agent/connect/ca/leaf/\(service)", what: "leaf certificate") { body, _ in
            await refreshMaterial(runtime.update(leaf: body), runtime: runtime, listeners: listeners)
        }
    }

    private func watchRoots(runtime: ProxyRuntime, listeners: ListenerSet) async {
        await watchIndexed(path: "/v1/agent/connect/ca/roots", what: "CA roots") { body, _ in
            await refreshMaterial(runtime.update(roots: body), runtime: runtime, listeners: listeners)
        }
    }

    /// Keeps the healthy instances of `upstream`'s destination current (index-blocking), so a new
    /// upstream connection dials at once, and the proxy still knows them while the agent is down.
    func watchInstances(_ upstream: UpstreamConfig, runtime: ProxyRuntime) async {
        var path = "/v1/health/connect/\(upstream.destinationName)?passing"
        if !upstream.datacenter.isEmpty { path += "&dc=\(upstream.datacenter)" }
        await watchIndexed(path: path, what: "instances of \(upstream.destinationName)") { body, _ in
            runtime.remember(instances: UpstreamConnection.instances(body), for: upstream.destinationName)
        }
    }

    /// Keeps the authorize cache honest: parks on the intentions that match `service` as a
    /// destination; every change (and every failure of the watch) empties the cache.
    private func watchIntentions(service: String, runtime: ProxyRuntime) async {
        let name = service.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? service
        await watchIndexed(path: "/v1/connect/intentions/match?by=destination&name=\(name)", what: "intentions",
                           failed: { runtime.intentions(at: nil) }) { _, index in
            runtime.intentions(at: index)
        }
        runtime.intentions(at: nil)
    }

    /// GET `path`, then `?index=<last>&wait=5m` again and again; `apply` each new answer (with
    /// its index); `failed` after each failed call.
    func watchIndexed(path: String, what: String, failed: @Sendable () -> Void = {},
                      apply: @Sendable (JSONValue, String) async -> Void) async {
        var index = "0"
        var backoff = Backoff()
        while !Task.isCancelled {
            do {
                let separator = path.contains("?") ? "&" : "?"
                let target = index == "0" ? path : "\(path)\(separator)index=\(index)&wait=5m"
                let (body, response) = try await agent.json(target, timeoutSeconds: 360, kind: .longPoll)
                backoff.reset()
                let newIndex = response.header("X-Consul-Index") ?? index
                guard newIndex != index else { continue }
                index = newIndex
                await apply(body, newIndex)
            } catch {
                failed()
                if Task.isCancelled { break }
                let wait = backoff.next()
                logger.warning("cannot read the \(what); retrying", metadata: ["error": "\(error)", "retry_in": "\(wait)"])
                await pause(wait)
            }
        }
    }

    private func refreshMaterial(_ documents: (leaf: JSONValue, roots: JSONValue)?, runtime: ProxyRuntime, listeners: ListenerSet) async {
        guard let (leaf, roots) = documents else { return }
        do {
            let material = try TLSMaterial(leaf: leaf, roots: roots)
            let first = runtime.material == nil
            runtime.set(material: material)
            logger.info("TLS material updated", metadata: ["leaf_serial": "\(material.leafSerial)", "trust_domain": "\(material.trustDomain)"])
            if first, let config = runtime.config { await listeners.apply(config) }
        } catch {
            logger.error("cannot use the certificate from the agent; keeping the previous one", metadata: ["error": "\(error)"])
        }
    }
}

/// One instance watch per upstream destination, following the config.
actor DiscoveryWatches {
    private let runner: ProxyRunner
    private let runtime: ProxyRuntime
    private var watches: [UpstreamConfig: Task<Void, Never>] = [:]

    init(runner: ProxyRunner, runtime: ProxyRuntime) {
        self.runner = runner
        self.runtime = runtime
    }

    func update(_ upstreams: [UpstreamConfig]) {
        let wanted = Set(upstreams)
        for (upstream, task) in watches where !wanted.contains(upstream) {
            task.cancel()
            watches.removeValue(forKey: upstream)
        }
        for upstream in wanted where watches[upstream] == nil {
            let (runner, runtime) = (runner, runtime)
            watches[upstream] = Task { await runner.watchInstances(upstream, runtime: runtime) }
        }
    }
}

/// 1 s doubling to 30 s.
struct Backoff {
    private var current: Duration = .seconds(1)
    mutating func reset() { current = .seconds(1) }
    mutating func next() -> Duration {
        defer { current = min(current * 2, .seconds(30)) }
        return current
    }
}
