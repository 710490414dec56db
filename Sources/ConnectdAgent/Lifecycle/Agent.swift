// The agent: loads config, opens state under data_dir, serves HTTP, reloads, stops cleanly.

import AgentConfig
import AgentHTTP
import AgentState
import AgentStore
import Authorization
import CertificateAuthority
import ConnectdCore
import Fleet
import Foundation
import HealthChecks
import Logging
import ProxySupervisor
import SystemdSupport
import ServiceLifecycle
import Telemetry
import UnixSignals
import Synchronization

/// A failure to start, with the reason a user can act on.
public struct AgentStartError: Error, CustomStringConvertible {
    public var description: String
}

public final class Agent: AgentBackend, Sendable {
    public let state: AgentState
    public let leaves: LeafCache
    public let health = HealthBoard()
    /// The state of every service and node check (runtime only).
    public let checks = CheckBoard()
    public let build: BuildInfo
    public let nodeID: String
    public let builtinProxyCommand: [String]
    public let supervisor: Supervisor
    public let metrics: MetricsHub
    private let agentMetrics: AgentMetrics
    /// Fleet mode: the etcd side (view, lease, catalog, CA); nil on a single host.
    let fleet: FleetRuntime?
    private let options: AgentOptions
    private let applied: SharedValue<AgentConfiguration>
    private let reloads = ReloadGate()
    private let notifier = SystemdNotifier()
    private let logger: Logger
    /// The temporary data_dir of `-dev`, removed when the agent stops.
    private let devDirectory: String?
    /// Held from init until `run` returns: one agent per data_dir.
    private let dataDirLock: DataDirLock

    /// Loads the configuration, prepares data_dir and opens the state with the config-file services.
    public init(options: AgentOptions, build: BuildInfo, logger: Logger) throws {
        var configuration: AgentConfiguration
        do {
            configuration = try options.loadConfiguration()
        } catch {
            throw AgentStartError(description: "invalid configuration:\n\(error)")
        }
        var devDirectory: String?
        if options.dev && configuration.dataDir == nil {
            var template = Array("/tmp/connectd-dev-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else {
                throw AgentStartError(description: "cannot create a temporary data_dir for -dev: \(String(cString: strerror(errno)))")
            }
            devDirectory = String(cString: made)
            configuration.dataDir = devDirectory
        }
        guard let dataDir = configuration.dataDir else { throw AgentStartError(description: "data_dir must be set") }
        let store: FileStore
        do {
            try AtomicFile.makeDirectory(dataDir)
            dataDirLock = try DataDirLock(dataDir: dataDir)
            store = try FileStore(dataDir: dataDir)
        } catch {
            throw AgentStartError(description: "data_dir \(dataDir): \(error.message)")
        }
        for entry in store.quarantined {
            logger.warning("moved an unreadable state file aside", metadata: ["file": "\(entry.key)", "moved_to": "\(entry.movedTo)", "reason": "\(entry.reason)"])
        }
        // `ca/serial` is no longer read (serials are random): its damage costs nothing.
        let damaged = store.damaged.filter { file in
            guard file.relativePath == "ca/serial.json" else { return true }
            let moved = store.setAside(file)
            logger.warning("moved an unreadable state file aside", metadata: ["file": "\(file.relativePath)", "moved_to": "\(moved.movedTo)", "reason": "\(file.reason)"])
            return false
        }
        guard damaged.isEmpty else {
            throw AgentStartError(description: DamageReport.describe(damaged, dataDir: dataDir, revision: store.revision))
        }
        nodeID = try Self.nodeID(store)
        do throws(StateError) {
            state = try AgentState(store: store, allocator: Self.allocator(configuration), caSettings: configuration.caSettings,
                                   logger: logger, shared: configuration.fleet != nil)
        } catch {
            throw AgentStartError(description: Self.describe(error, store: store))
        }
        self.options = options
        self.build = build
        self.logger = logger
        self.devDirectory = devDirectory
        self.applied = SharedValue(configuration)
        let appliedConfiguration = self.applied
        let state = self.state
        agentMetrics = AgentMetrics(settings: configuration.telemetry)
        metrics = agentMetrics.hub
        leaves = LeafCache(authority: { state.snapshot.ca },
                           rootChangeJitter: configuration.caSettings.rootChangeJitter ?? CASettings.defaultRootChangeJitter,
                           datacenter: { appliedConfiguration.value.datacenter }, signed: agentMetrics.leafSigned)
        if let settings = configuration.fleet {
            let leaves = self.leaves
            guard settings.etcdCAFile == nil else {
                throw AgentStartError(description: "fleet.etcd_ca_file: TLS to etcd is not available in this build yet; use http:// endpoints on a trusted network")
            }
            let nodeID = nodeID
            do {
                fleet = try FleetRuntime(settings: settings, dataDir: dataDir, node: configuration.nodeName,
                                         clusterID: configuration.caSettings.clusterID, state: state,
                                         proxyStatus: { [health, checks] proxy in
                                             ProxyHealth.combined(listener: health.status(of: proxy.proxyServiceID),
                                                                  target: state.snapshot.services[proxy.targetServiceID]?.definition, board: checks)
                                         },
                                         identity: {
                                             let current = appliedConfiguration.value
                                             return CatalogPublisher.Identity(node: current.nodeName, nodeID: nodeID, datacenter: current.datacenter,
                                                                              address: current.advertisedAddress)
                                         }, leavesCurrent: { leaves.allSigned(by: state.snapshot.ca.activeSigningKeyID) },
                                         etcdCalls: agentMetrics.etcdCalls, logger: logger)
            } catch {
                throw AgentStartError(description: "fleet: \(error)")
            }
        } else {
            fleet = nil
        }
        let builtin = [Self.executablePath(), "proxy"]
        builtinProxyCommand = builtin
        let applied = self.applied
        supervisor = Supervisor(
            state: self.state, configuration: { applied.value }, dataDir: dataDir, builtinCommand: builtin,
            agentEnvironment: ProcessInfo.processInfo.environment, isRoot: geteuid() == 0,
            events: agentMetrics.supervisorEvents, logger: logger)
        let supervisor = supervisor
        agentMetrics.collectState(state: state, leaves: leaves, proxyStatuses: { supervisor.status() })
        if let fleet { agentMetrics.collectFleet(fleet) }
    }


    /// Applies the config-file services; call once before ``run(onListening:)``.
    public func start() async throws {
        do throws(StateError) {
            try await state.applyConfiguration(Self.change(configuration()))
        } catch {
            throw AgentStartError(description: "cannot apply the configuration: \(error)")
        }
        await fleet?.start()
        let snapshot = state.snapshot
        logger.info("agent started", metadata: [
            "datacenter": "\(configuration().datacenter)", "node": "\(configuration().nodeName)",
            "services": "\(snapshot.services.count)", "managed_proxies": "\(snapshot.proxies.count)",
            "data_dir": "\(configuration().dataDir ?? "")",
        ])
    }

    public func configuration() -> AgentConfiguration { applied.value }

    public func fleetStatus() async -> JSONValue? { await fleet?.status(node: configuration().nodeName) }

    public func fleetSummary() async -> String? { await fleet?.summary(node: configuration().nodeName) }

    public func rotateFleetRoot() async throws -> Bool? {
        guard let fleet else { return nil }
        let rotated = try await fleet.rotateRoot()
        return rotated.from != rotated.to
    }

    public func removeFleetHost(_ node: String) async throws -> Int? {
        try await fleet?.removeHost(node, by: configuration().nodeName)
    }

    public func fleetUses(service: String) -> Bool { fleet?.uses(service: service) ?? true }

    public func fleetUse(service: String) async { await fleet?.use(service: service) }

    public func fleetCatalogServices() async throws -> (services: [String: Set<String>], revision: Int64)? {
        try await fleet?.catalogServices()
    }

    public func configuration<Part: Sendable>(_ part: (AgentConfiguration) -> Part) -> Part { applied.read(part) }

    /// Re-reads every config source; applies it only when valid, else keeps the old one and throws.
    public func reload() async throws {
        notifier.reloading()
        do {
            try await reloadNow()
            notifier.ready(status: "configuration reloaded; " + StatusSummary.line(supervisor.status()))
        } catch {
            let first = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
            notifier.notify(["READY=1", "STATUS=reload failed, previous configuration kept: \(first)"])
            throw error
        }
    }

    private func reloadNow() async throws {
        try await reloads.run { [self] in
            var next: AgentConfiguration
            do throws(ConfigErrors) {
                next = try options.loadConfiguration()
            } catch {
                logger.error("reload refused: invalid configuration, keeping the old one", metadata: ["problems": "\(error.problems.count)"])
                agentMetrics.reloaded(refusedWith: error.problems.count)
                throw error
            }
            let current = configuration()
            next.dataDir = current.dataDir
            if next.clientAddr != current.clientAddr || next.httpPort != current.httpPort {
                logger.warning("client_addr and ports.http changes take effect after a restart")
            }
            if next.telemetry != current.telemetry {
                logger.warning("telemetry changes take effect after a restart")
            }
            // One transition: CA settings, intentions, services and ports together or not at all.
            // The new settings are visible before the index moves, so woken watchers render with them.
            applied.set(next)
            do throws(StateError) {
                // When only agent settings changed (e.g. proxy_defaults), the commit still wakes watchers.
                try await state.applyConfiguration(Self.change(next, wakeWatchers: next != current))
            } catch {
                applied.set(current)
                agentMetrics.reloaded(refusedWith: 1)
                logger.error("reload refused: the configuration cannot be applied, keeping the old one", metadata: ["error": "\(error)"])
                throw AgentStartError(description: Self.reloadProblem(error))
            }
            leaves.setRootChangeJitter(next.caSettings.rootChangeJitter ?? CASettings.defaultRootChangeJitter)
            agentMetrics.reloaded(refusedWith: nil)
            await supervisor.requestReconcile()
            logger.info("configuration reloaded", metadata: ["services": "\(next.services.count)"])
        }
    }

    /// Serves until SIGTERM/SIGINT (or cancellation); SIGHUP reloads. Parked long-polls are
    /// released before the HTTP server drains, so a stop never waits for them.
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        defer {
            removeDevDirectory()
            dataDirLock.release()
        }
        let configuration = configuration()
        var httpLogger = logger
        httpLogger[metadataKey: "component"] = "http"
        let table = AgentHTTPServer.routeTable(backend: self, logger: httpLogger)
        let logger = logger
        let listening: @Sendable (Int) async -> Void = { [supervisor, notifier] port in
            logger.info("HTTP API listening", metadata: ["address": "\(configuration.clientAddr):\(port)"])
            await supervisor.apiListening(host: configuration.clientAddr, port: port)
            // Ready only once no proxy is still starting, as systemd's READY=1 promises. A spawn
            // that hangs past the bound is named in STATUS= rather than holding READY forever.
            await supervisor.firstReconcile()
            let settled = await supervisor.settled(within: .seconds(60))
            let proxies = StatusSummary.line(supervisor.status())
            notifier.ready(status: "serving on \(configuration.clientAddr):\(port); "
                + (settled ? "every proxy started: " : "ready although some proxies are still starting: ") + proxies)
            await onListening(port)
        }
        // Read per request, so each takes only its field instead of a copy of the configuration.
        let applied = applied
        let maxBodyBytes: @Sendable () -> Int = { applied.read(\.httpMaxRequestBytes) }
        let limits: @Sendable () -> HTTPLimits = { applied.read(\.httpConnections) }
        let passed = SystemdSockets.take()
        let listener: AgentHTTPService.Listener
        if let socket = passed.first(where: { $0.name == "http" }) ?? (passed.count == 1 ? passed.first : nil) {
            // Socket activation: serve on the descriptor systemd passed (named "http").
            listener = .descriptor(socket.fd)
        } else {
            listener = .address(host: configuration.clientAddr, port: configuration.httpPort)
        }
        // Not measured at all (no clock read, no route lookup) when the filter keeps neither HTTP metric.
        let httpMetrics = [AgentMetric.httpRequests, AgentMetric.httpRequestDuration].contains { configuration.telemetry.keeps($0.name) }
            ? HTTPMetrics(factory: metrics.factory) : nil
        let http = AgentHTTPService(listener: listener, table: table, maxBodyBytes: maxBodyBytes, limits: limits,
                                    logger: httpLogger, metrics: httpMetrics, onListening: listening)
        var testHooks: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if TestHookService.enabled { testHooks.append(.init(service: TestHookService(logger: logger))) }
        let fleetServices = (fleet?.services ?? []).map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: testHooks + fleetServices + [
                .init(service: http),
                .init(service: SupervisorService(supervisor: supervisor)),
                .init(service: CAMaintenanceService(state: state, leaves: leaves, logger: logger)),
                .init(service: ListenerCheckService(state: state, board: health, agentBindAddress: { applied.read(\.bindAddr) },
                                                    logger: logger)),
                .init(service: checkRunner()),
                .init(service: WatchReleaseService(release: { [state, leaves] in
                    state.shutdownWatches()
                    leaves.shutdown()
                }, reloads: reloads)),
                .init(service: ReloadSignalService(agent: self, logger: logger)),
                .init(service: UpgradeSignalService(supervisor: supervisor, dev: configuration.dev, logger: logger),
                      successTerminationBehavior: .gracefullyShutdownGroup),
                .init(service: SystemdService(notifier: notifier, supervisor: supervisor,
                                              longestStopGrace: { [self] in longestStopGrace() },
                                              fleetSummary: { [self] in await fleetSummary() }, logger: logger)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        // The last notifications (STOPPING=1, a failure) get a bounded moment to leave before exit.
        defer { notifier.flush(within: .seconds(1)) }
        do {
            try await group.run()
            await fleet?.shutdown()
        } catch {
            await fleet?.shutdown()
            let description = Self.describe(error, configuration)
            notifier.failed("failed: \(description)")
            throw AgentStartError(description: "agent stopped with an error: \(description)")
        }
        logger.info("agent stopped")
    }

    /// The runner of every service check (from the services' definitions) and node check (config files).
    private func checkRunner() -> CheckRunner {
        let (state, applied, logger) = (state, applied, logger)
        return CheckRunner(board: checks, checks: {
            let snapshot = state.snapshot
            return applied.read(\.checks) + snapshot.services.values.sorted { $0.definition.id < $1.definition.id }.flatMap(\.definition.checks)
                + snapshot.checks.values.sorted { $0.id < $1.id }
        }, changed: {
            try? await state.touch()
        }, deregister: { serviceID, checkID in
            guard state.snapshot.services[serviceID]?.source == .api else { return }
            logger.warning("deregistering a service whose check stayed critical past deregister_critical_service_after",
                           metadata: ["service": "\(serviceID)", "check": "\(checkID)"])
            _ = try? await state.deregister(serviceID: serviceID)
        }, logger: logger)
    }

    /// The longest `stop_grace` among the current proxies (defaults overlaid by their own settings).
    func longestStopGrace() -> Duration {
        let defaults = configuration().proxyDefaults.supervision
        return state.snapshot.proxies.values
            .map { ResolvedSupervision(defaults.overlaid(by: $0.request.supervision)).stopGrace }
            .max() ?? ResolvedSupervision(defaults).stopGrace
    }

    private func removeDevDirectory() {
        guard let devDirectory else { return }
        try? FileManager.default.removeItem(atPath: devDirectory)
    }

    static func describe(_ error: any Error, _ configuration: AgentConfiguration) -> String {
        let text = "\(error)"
        if text.contains("Address already in use") || text.contains("EADDRINUSE") || text.contains("errno: 98") {
            return "cannot listen on \(configuration.clientAddr):\(configuration.httpPort): address already in use (set ports.http or -http-port)"
        }
        return text
    }

    /// What `configuration` contributes to the state, as one transition.
    static func change(_ configuration: AgentConfiguration, wakeWatchers: Bool = false) -> AgentState.ConfigurationChange {
        AgentState.ConfigurationChange(services: configuration.services, intentions: configuration.intentions,
                                       caSettings: configuration.caSettings, allocator: allocator(configuration),
                                       wakeWatchers: wakeWatchers)
    }

    /// A refused reload in the words of the setting that caused it.
    static func reloadProblem(_ error: StateError) -> String {
        switch error {
        case .ca(let problem): "connect.ca_config: \(problem)"
        case .intention(let problem): "intentions: \(problem)"
        default: "\(error)"
        }
    }

    /// Why the state could not be opened, with the way out for a damaged CA.
    static func describe(_ error: StateError, store: FileStore) -> String {
        switch error {
        case .ca(.corruptState(let problem)):
            return "the certificate authority in data_dir \(store.dataDir) is damaged: \(problem). "
                + DamageReport.caWayOut(dataDir: store.dataDir)
        case .damagedRecord(let key, let reason):
            let path = store.path(for: key)
            return DamageReport.describe([.init(relativePath: String(path.dropFirst(store.root.count + 1)), path: path, reason: reason)],
                                         dataDir: store.dataDir, revision: store.revision)
        default:
            return "data_dir \(store.dataDir): \(error)"
        }
    }

    static func allocator(_ configuration: AgentConfiguration) -> PortAllocator {
        PortAllocator(range: configuration.proxyPortRange, probe: BindPortProbe(address: configuration.bindAddr))
    }

    /// The node ID kept in the store (`agent/node-id`), created on first start.
    static func nodeID(_ store: FileStore) throws -> String {
        if let entry = try store.list(prefix: "agent/node-id").first {
            guard let id = entry.value["NodeID"]?.stringValue, !id.isEmpty else {
                throw AgentStartError(description: DamageReport.describe(
                    [.init(relativePath: "agent/node-id.json", path: store.path(for: "agent/node-id"), reason: "no NodeID string")],
                    dataDir: store.dataDir, revision: store.revision))
            }
            return id
        }
        let id = ProxyToken.generate()
        do {
            try store.commit([.put(key: "agent/node-id", value: .object([("NodeID", .string(id))]))])
        } catch {
            throw AgentStartError(description: "cannot write the node ID: \(error)")
        }
        return id
    }

    static func executablePath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

/// On graceful shutdown, releases every parked blocking query and refuses new reloads.
struct WatchReleaseService: Service, CustomStringConvertible {
    /// Releases every watch (state, CA roots, leaf certificates).
    let release: @Sendable () -> Void
    let reloads: ReloadGate
    var description: String { "WatchReleaseService" }

    func run() async throws {
        await withGracefulShutdownHandler {
            try? await gracefulShutdown()
        } onGracefulShutdown: {
            release()
            Task { await reloads.stop() }
        }
        release()
    }
}

/// SIGHUP → reload, logged; a bad config is reported and the old one kept.
struct ReloadSignalService: Service, CustomStringConvertible {
    let agent: Agent
    let logger: Logger
    var description: String { "ReloadSignalService" }

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            logger.info("SIGHUP received, reloading")
            do {
                try await agent.reload()
            } catch {
                logger.error("reload failed; the previous configuration stays in effect", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// Runs the proxy supervisor inside the service group.
struct SupervisorService: Service, CustomStringConvertible {
    let supervisor: Supervisor
    var description: String { "SupervisorService" }

    func run() async throws { await supervisor.run() }
}

/// SIGUSR2: exit for an upgrade and leave the proxies running for the next connectd to adopt
/// (the unit's RestartKillSignal). In -dev proxies are stopped anyway: nothing could adopt them.
struct UpgradeSignalService: Service, CustomStringConvertible {
    let supervisor: Supervisor
    let dev: Bool
    let logger: Logger
    var description: String { "UpgradeSignalService" }

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sigusr2)
        for await _ in signals.cancelOnGracefulShutdown() {
            if dev {
                logger.info("SIGUSR2 received in -dev: stopping, and stopping the proxies too")
            } else {
                logger.info("SIGUSR2 received: exiting and leaving the managed proxies running")
                await supervisor.leaveProxiesRunning()
            }
            return
        }
    }
}
