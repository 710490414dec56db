// How the agent's parts report into its metrics hub: event callbacks for the supervisor and the
// leaf cache, counters for reloads, and collectors that read gauges from the current state just
// before a scrape (nothing polls).

import AgentConfig
import AgentState
import CertificateAuthority
import CoreMetrics
import EtcdClient
import Fleet
import Foundation
import ProxySupervisor
import Telemetry

struct AgentMetrics: Sendable {
    let hub: MetricsHub
    private let reloadsApplied: CoreMetrics.Counter
    private let reloadsRefused: CoreMetrics.Counter
    private let configProblems: CoreMetrics.Gauge

    init(settings: TelemetrySettings) {
        hub = MetricsHub(keeps: { settings.keeps($0) })
        reloadsApplied = CoreMetrics.Counter(label: AgentMetric.reloads.name, dimensions: [("outcome", "applied")], factory: hub.factory)
        reloadsRefused = CoreMetrics.Counter(label: AgentMetric.reloads.name, dimensions: [("outcome", "refused")], factory: hub.factory)
        configProblems = CoreMetrics.Gauge(label: AgentMetric.configProblems.name, factory: hub.factory)
        configProblems.record(0)
    }

    /// A reload was applied, or refused with `problems` problems.
    func reloaded(refusedWith problems: Int?) {
        if let problems {
            reloadsRefused.increment()
            configProblems.record(problems)
        } else {
            reloadsApplied.increment()
            configProblems.record(0)
        }
    }

    var supervisorEvents: SupervisorEvents {
        let factory = hub.factory
        return SupervisorEvents(
            restarted: { proxy, cause in
                CoreMetrics.Counter(label: AgentMetric.proxyRestarts.name, dimensions: [("proxy", proxy), ("cause", cause)], factory: factory)
                    .increment()
            },
            spawned: { proxy, took in
                CoreMetrics.Timer(label: AgentMetric.proxySpawnDuration.name, dimensions: [("proxy", proxy)], factory: factory)
                    .record(elapsed: took)
            })
    }

    var leafSigned: @Sendable (LeafCache.Signing) -> Void {
        let counters = Dictionary(uniqueKeysWithValues: LeafCache.Signing.allCases.map { reason in
            (reason, CoreMetrics.Counter(label: AgentMetric.leafCertificates.name, dimensions: [("reason", reason.rawValue)],
                                         factory: hub.factory))
        })
        return { reason in counters[reason]?.increment() }
    }

    /// Gauges read from the state, the leaf cache and the supervisor at each scrape.
    func collectState(state: AgentState, leaves: LeafCache, proxyStatuses: @escaping @Sendable () -> [ProxyStatus]) {
        let factory = hub.factory
        let parked = CoreMetrics.Gauge(label: AgentMetric.blockingQueriesParked.name, factory: factory)
        let rootExpiry = CoreMetrics.Gauge(label: AgentMetric.rootExpiry.name, factory: factory)
        let intermediateExpiry = CoreMetrics.Gauge(label: AgentMetric.intermediateExpiry.name, factory: factory)
        let leafExpiry = CoreMetrics.Gauge(label: AgentMetric.leafExpiry.name, factory: factory)
        let intentions = CoreMetrics.Gauge(label: AgentMetric.intentions.name, factory: factory)
        let states = Dictionary(uniqueKeysWithValues: Self.proxyStates.map { name in
            (name, CoreMetrics.Gauge(label: AgentMetric.managedProxies.name, dimensions: [("state", name)], factory: factory))
        })
        hub.addCollector {
            let now = Date()
            let snapshot = state.snapshot
            parked.record(state.watch.waiterCount + state.intentionsWatch.waiterCount + state.rootsWatch.waiterCount
                + state.catalogWatch.waiterCount + leaves.waiterCount)
            if let root = snapshot.ca.roots.first(where: \.active) { rootExpiry.record(root.notAfter.timeIntervalSince(now)) }
            if snapshot.ca.fleetManaged, let notAfter = snapshot.ca.signerNotAfter {
                intermediateExpiry.record(notAfter.timeIntervalSince(now))
            }
            if let soonest = leaves.soonestExpiry { leafExpiry.record(soonest.timeIntervalSince(now)) }
            intentions.record(snapshot.intentions.intentions.count)
            var counts = Dictionary(uniqueKeysWithValues: Self.proxyStates.map { ($0, 0) })
            for status in proxyStatuses() { counts[status.state.name, default: 0] += 1 }
            for (name, gauge) in states { gauge.record(counts[name] ?? 0) }
        }
    }

    /// etcd calls' latency and errors, by call.
    var etcdCalls: EtcdClient.CallObserver {
        let factory = hub.factory
        return { call, took, failed in
            CoreMetrics.Timer(label: AgentMetric.etcdRequestDuration.name, dimensions: [("call", call)], factory: factory).record(elapsed: took)
            if failed {
                CoreMetrics.Counter(label: AgentMetric.etcdRequestErrors.name, dimensions: [("call", call)], factory: factory).increment()
            }
        }
    }

    /// The fleet's view and lease, read at each scrape.
    func collectFleet(_ fleet: FleetRuntime) {
        let factory = hub.factory
        let lag = CoreMetrics.Gauge(label: AgentMetric.viewLag.name, factory: factory)
        let watching = CoreMetrics.Gauge(label: AgentMetric.viewWatching.name, factory: factory)
        let leases = Dictionary(uniqueKeysWithValues: ["starting", "held", "unconfirmed", "stopped"].map { state in
            (state, CoreMetrics.Gauge(label: AgentMetric.lease.name, dimensions: [("state", state)], factory: factory))
        })
        hub.addCollector {
            let reading = await fleet.reading()
            lag.record(reading.viewLag)
            watching.record(reading.watching ? 1 : 0)
            for (state, gauge) in leases { gauge.record(state == reading.lease ? 1 : 0) }
        }
    }

    /// Every `ProxyRunState.name`, so a state with no proxy reads 0 instead of vanishing.
    static let proxyStates = ["starting", "running", "backing-off", "stopping", "stopped", "failed", "unsupported", "refused-root"]
}
