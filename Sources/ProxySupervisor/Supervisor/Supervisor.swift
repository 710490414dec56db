// The supervisor: reconciles the desired managed proxies (AgentState + config) with runners,
// re-adopts proxies that outlived a connectd restart, and stops or detaches them at shutdown.

import AgentConfig
import AgentState
import AgentStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

public actor Supervisor {
    /// The supervisor's own lifecycle.
    enum Phase {
        /// Waiting for the HTTP API address (proxies need it in their environment).
        case waitingForAPI
        case running
        /// Shutting down: `leaveRunning` detaches instead of stopping.
        case shuttingDown(leaveRunning: Bool)
        case finished
    }

    private var phase: Phase = .waitingForAPI
    private let state: AgentState
    private let configuration: @Sendable () -> AgentConfiguration
    private let dataDir: String
    private let logger: Logger
    private let events = EventThread()
    private let records: RunningRecordStore
    private var builder: SpecBuilder?
    private var runners: [String: (runner: ProxyRunner, logs: ProxyLogs, refused: Bool)] = [:]
    private var adoptable: [String: RunningRecord] = [:]
    private var reconcileRequests: AsyncStream<Void>.Continuation?
    private var warnedRoot = false
    /// Callers of ``firstReconcile()`` waiting for the first reconcile to finish.
    private var firstReconcileWaiters: [CheckedContinuation<Void, Never>] = []
    private var reconciledOnce = false
    private let isRoot: Bool
    /// Published through the state (``AgentState/proxyStatus``).
    private nonisolated var statuses: ProxyStatusBoard { state.proxyStatus }
    private let agentEnvironment: [String: String]
    private let builtinCommand: [String]
    private let reports: SupervisorEvents

    /// - Parameters:
    ///   - isRoot: whether connectd runs with effective UID 0 (injectable for tests).
    public init(state: AgentState, configuration: @escaping @Sendable () -> AgentConfiguration, dataDir: String,
                builtinCommand: [String], agentEnvironment: [String: String], isRoot: Bool,
                events: SupervisorEvents = SupervisorEvents(), logger: Logger) {
        self.reports = events
        self.state = state
        self.configuration = configuration
        self.dataDir = dataDir
        self.builtinCommand = builtinCommand
        self.agentEnvironment = agentEnvironment
        self.isRoot = isRoot
        self.logger = logger
        records = RunningRecordStore(dataDir: dataDir)
    }

    /// Current status of every managed proxy, sorted by ID.
    public nonisolated func status() -> [ProxyStatus] {
        statuses.all()
    }

    /// The HTTP API is listening: proxies can be given its address. Starts reconciling.
    public func apiListening(host: String, port: Int) {
        builder = SpecBuilder(agentEnvironment: agentEnvironment, builtinCommand: builtinCommand,
                              httpAddress: SpecBuilder.dialAddress(clientAddr: host, port: port))
        requestReconcile()
    }

    /// Returns once the first reconcile has run: every desired proxy was adopted, spawned or refused.
    public func firstReconcile() async {
        if reconciledOnce { return }
        await withCheckedContinuation { firstReconcileWaiters.append($0) }
    }

    /// Returns true once no proxy is `starting` (each is running, adopted, backing off, refused,
    /// failed or unsupported): what READY=1 promises. False when `limit` passed first or the
    /// agent is stopping.
    public nonisolated func settled(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while true {
            let seen = statusChanges.index
            if !status().contains(where: { $0.state == .starting }) { return true }
            let left = deadline - .now
            guard left > .zero else { return false }
            switch await statusChanges.wait(after: seen, timeout: left) {
            case .shutDown, .cancelled: return false
            case .changed, .timedOut: continue
            }
        }
    }

    /// Answers when the actor is not stuck (the watchdog's liveness probe).
    public func ping() -> Bool { true }

    /// A version that moves whenever any proxy's status changes (for the systemd status line).
    public nonisolated var statusChanges: IndexWatch { statuses.changes }

    /// Asks for a reconcile soon (after a reload that may change proxy defaults).
    public func requestReconcile() {
        reconcileRequests?.yield()
    }

    /// Runs until graceful shutdown; then stops every proxy, or leaves them running when
    /// ``leaveProxiesRunning()`` was called first.
    public func run() async {
        let (requests, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        reconcileRequests = continuation
        if builder != nil { continuation.yield() }
        await adoptOrStopLeftovers()
        let watcher = Task { [state] in
            var seen: UInt64 = 0
            while !Task.isCancelled {
                switch await state.watch.wait(after: seen, timeout: .seconds(3600)) {
                case .changed(let index):
                    seen = index
                    continuation.yield()
                case .timedOut: continue
                case .shutDown, .cancelled: return
                }
            }
        }
        await withGracefulShutdownHandler {
            for await _ in requests {
                if case .shuttingDown = phase { break }
                // Coalesce a burst: a short quiet period before acting.
                try? await Task.sleep(for: .milliseconds(50))
                await reconcile()
            }
        } onGracefulShutdown: {
            continuation.finish()
        }
        watcher.cancel()
        await shutdown()
    }

    /// Reads what a previous connectd left: records to adopt from, and marked processes no
    /// record claims, which are stopped now, before anything is spawned (they would otherwise
    /// run untracked beside the proxies this connectd starts).
    private func adoptOrStopLeftovers() async {
        let stored = records.loadAll()
        let plan = AdoptionPlan.make(stored: stored, marked: SpawnMarker.scan(dataDir: records.markerDataDir), now: Date(),
                                     identify: ProcessIdentity.current(pid:))
        for (id, record) in plan.adoptable where stored[id] != .running(record) {
            try? records.save(record)
        }
        for (id, run) in stored where plan.adoptable[id] == nil {
            if case .spawning = run { records.remove(id) }
        }
        adoptable = plan.adoptable
        guard !plan.strays.isEmpty else { return }
        let settings = ResolvedSupervision(configuration().proxyDefaults.supervision)
        await withTaskGroup(of: Void.self) { group in
            for stray in plan.strays {
                guard let identity = ProcessIdentity.current(pid: stray.pid),
                      let process = ProcessSpawner.adopt(identity, startedAt: Date(), events: events) else { continue }
                logger.warning("stopping an untracked proxy process left by a previous connectd",
                               metadata: ["pid": "\(stray.pid)", "spawn_id": "\(stray.spawnID)"])
                group.addTask {
                    await process.terminate(signal: settings.stopSignal, grace: settings.stopGrace)
                    close(process.pidfd)
                }
            }
        }
    }

    /// Marks the coming shutdown as an upgrade restart: proxies keep running for re-adoption.
    public func leaveProxiesRunning() {
        phase = .shuttingDown(leaveRunning: true)
    }

    private func shutdown() async {
        let leaveRunning: Bool
        if case .shuttingDown(let leave) = phase { leaveRunning = leave } else { leaveRunning = false }
        phase = .shuttingDown(leaveRunning: leaveRunning)
        if leaveRunning {
            for (runner, _, _) in runners.values { await runner.detach() }
            logger.info("leaving managed proxies running for the next connectd", metadata: ["proxies": "\(runners.count)"])
        } else {
            await stopAll(Array(runners.keys))
            logger.info("stopped every managed proxy")
        }
        for (_, logs, _) in runners.values { logs.close(removePipes: !leaveRunning) }
        runners.removeAll()
        events.shutdown()
        phase = .finished
        releaseFirstReconcileWaiters()
    }

    // MARK: - Reconcile

    /// Reconciles once the API address is known; the first one moves the phase to running.
    private func reconcile() async {
        guard let builder else { return }
        if case .waitingForAPI = phase { phase = .running }
        guard case .running = phase else { return }
        await reconcile(with: builder)
        releaseFirstReconcileWaiters()
    }

    private func releaseFirstReconcileWaiters() {
        reconciledOnce = true
        for waiter in firstReconcileWaiters { waiter.resume() }
        firstReconcileWaiters.removeAll()
    }

    private func reconcile(with builder: SpecBuilder) async {
        let config = configuration()
        let snapshot = state.snapshot
        var desired: [String: ProxySpec] = [:]
        // A sidecar with its own port (or `"managed": false`) is a registration: its proxy is the user's.
        for proxy in snapshot.proxies.values where proxy.request.isSupervised {
            desired[proxy.proxyServiceID] = builder.spec(for: proxy, configuration: config)
        }
        let refuse = isRoot && !config.allowManagedRoot
        // Removed, or changed process (or root permission): stop first (concurrently), then start.
        var toStop: [String] = []
        for (id, entry) in runners {
            guard let spec = desired[id] else { toStop.append(id); continue }
            let current = await entry.runner.spec
            if current.processHash != spec.processHash || current.execMode != spec.execMode || entry.refused != refuse {
                toStop.append(id)
            } else {
                await entry.runner.update(spec)
            }
        }
        if !toStop.isEmpty {
            await stopAll(toStop)
            for id in toStop {
                runners[id]?.logs.close(removePipes: desired[id] == nil)
                runners[id] = nil
                if desired[id] == nil {
                    statuses.remove(id)
                    logger.info("managed proxy removed", metadata: ["proxy": "\(id)"])
                }
            }
        }
        if refuse && !desired.isEmpty && !warnedRoot {
            warnedRoot = true
            logger.warning("running as root: managed proxies will not be started (set connect.proxy.allow_managed_root to allow)")
        }
        for (id, spec) in desired.sorted(by: { $0.key < $1.key }) where runners[id] == nil {
            await startRunner(spec, refuseRoot: refuse)
        }
        // Records of proxies that are no longer desired are dropped, never signalled
        // unless proven to be ours (handled in startRunner for desired ones).
        for (id, record) in adoptable where desired[id] == nil {
            await stopIfOurs(record)
            adoptable[id] = nil
        }
    }

    private func startRunner(_ spec: ProxySpec, refuseRoot: Bool) async {
        let logs: ProxyLogs
        do {
            let journal = spec.supervision.logSink == .journal
                || (spec.supervision.logSink == .auto && agentEnvironment["JOURNAL_STREAM"] != nil)
            logs = try ProxyLogs(proxyID: spec.proxyID, dataDir: dataDir, maxBytes: spec.supervision.logMaxBytes,
                                 maxFiles: spec.supervision.logMaxFiles, events: events, journal: journal)
            if journal && !logs.toJournal {
                logger.warning("journald is not reachable; proxy output goes to files", metadata: ["proxy": "\(spec.proxyID)"])
            }
        } catch {
            logger.error("cannot set up proxy logs", metadata: ["proxy": "\(spec.proxyID)", "error": "\(error)"])
            var failed = ProxyStatus(proxyID: spec.proxyID, targetServiceID: spec.targetServiceID, state: .failed(reason: "\(error)"))
            failed.restartCount = 0
            statuses.publish(failed)
            return
        }
        let context = RunnerContext(logs: logs, records: records, logger: logger, events: reports) { [statuses] status in
            statuses.publish(status)
        }
        let runner = ProxyRunner(spec: spec, context: context)
        runners[spec.proxyID] = (runner, logs, refuseRoot)
        if refuseRoot {
            await runner.refuseRoot()
            return
        }
        var adopted: WatchedProcess?
        var spawnID = ""
        if let record = adoptable.removeValue(forKey: spec.proxyID) {
            if record.identity.isAlive && record.processHash == spec.processHash {
                adopted = ProcessSpawner.adopt(record.identity, startedAt: record.startedAt, events: events)
                spawnID = record.spawnID
            } else {
                await stopIfOurs(record)
            }
        }
        await runner.start(adopting: adopted, spawnID: spawnID)
    }

    /// A recorded process whose spec changed or that is no longer wanted: stopped only when
    /// PID, start time and boot id prove it is the one we started; otherwise left alone.
    private func stopIfOurs(_ record: RunningRecord) async {
        defer { records.remove(record.proxyID) }
        guard record.identity.isAlive, let process = ProcessSpawner.adopt(record.identity, startedAt: record.startedAt, events: events) else {
            if ProcessIdentity.current(pid: record.identity.pid) != nil {
                logger.warning("recorded proxy PID now belongs to another process; leaving it alone",
                               metadata: ["proxy": "\(record.proxyID)", "pid": "\(record.identity.pid)"])
            }
            return
        }
        logger.info("stopping a proxy left by a previous connectd whose definition changed", metadata: ["proxy": "\(record.proxyID)", "pid": "\(record.identity.pid)"])
        let settings = ResolvedSupervision(configuration().proxyDefaults.supervision)
        await process.terminate(signal: settings.stopSignal, grace: settings.stopGrace)
        close(process.pidfd)
    }

    /// Stops the given runners concurrently.
    private func stopAll(_ ids: [String]) async {
        let targets = ids.compactMap { runners[$0]?.runner }
        await withTaskGroup(of: Void.self) { group in
            for runner in targets { group.addTask { await runner.stop() } }
        }
    }
}
