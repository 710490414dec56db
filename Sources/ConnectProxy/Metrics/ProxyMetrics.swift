// The proxy's metrics: one hub (Prometheus text only) and the handles each listener and
// upstream records into, made once per listener so a connection only increments.

import CoreMetrics
import Foundation
import Synchronization
import Telemetry

final class ProxyMetrics: Sendable {
    let hub: MetricsHub
    /// The `proxy` label: the proxy's ID (managed) or its service (unmanaged).
    let proxy: String
    private let listeners = Mutex<[String: ListenerMetrics]>([:])
    private let upstreams = Mutex<[String: UpstreamMetrics]>([:])

    init(proxy: String) {
        self.proxy = proxy
        hub = MetricsHub(catalog: ProxyMetric.all, intervals: false)
    }

    /// The handles of the listener named `name` (`public`, `upstream:<destination>`).
    func listener(_ name: String) -> ListenerMetrics {
        listeners.withLock { listeners in
            if let known = listeners[name] { return known }
            let made = ListenerMetrics(proxy: proxy, listener: name, factory: hub.factory)
            listeners[name] = made
            return made
        }
    }

    func upstream(_ destination: String) -> UpstreamMetrics {
        upstreams.withLock { upstreams in
            if let known = upstreams[destination] { return known }
            let made = UpstreamMetrics(proxy: proxy, upstream: destination, factory: hub.factory)
            upstreams[destination] = made
            return made
        }
    }

    /// Counts a failed call to the agent.
    var agentCallFailed: @Sendable (AgentClient.Kind) -> Void {
        let factory = hub.factory
        let longPolls = CoreMetrics.Counter(label: ProxyMetric.agentErrors.name, dimensions: [("proxy", proxy), ("kind", "long_poll")],
                                            factory: factory)
        let calls = CoreMetrics.Counter(label: ProxyMetric.agentErrors.name, dimensions: [("proxy", proxy), ("kind", "call")], factory: factory)
        return { kind in (kind == .longPoll ? longPolls : calls).increment() }
    }

    /// Reads the leaf's expiry from `runtime` at each scrape.
    func collectLeafExpiry(_ runtime: ProxyRuntime) {
        let gauge = CoreMetrics.Gauge(label: ProxyMetric.leafExpiry.name, dimensions: [("proxy", proxy)], factory: hub.factory)
        hub.addCollector {
            if let expiry = runtime.material?.leafValidBefore { gauge.record(expiry.timeIntervalSinceNow) }
        }
    }
}

/// What one listener records.
struct ListenerMetrics: Sendable {
    let accepted: CoreMetrics.Counter
    let active: CoreMetrics.Meter
    let handshakeFailures: CoreMetrics.Counter
    let received: CoreMetrics.Counter
    let sent: CoreMetrics.Counter
    let deniedByIntention: CoreMetrics.Counter
    let deniedWithoutIdentity: CoreMetrics.Counter
    let authorizeFailed: CoreMetrics.Counter

    init(proxy: String, listener: String, factory: any MetricsFactory) {
        let labels = [("proxy", proxy), ("listener", listener)]
        accepted = CoreMetrics.Counter(label: ProxyMetric.connections.name, dimensions: labels, factory: factory)
        active = CoreMetrics.Meter(label: ProxyMetric.activeConnections.name, dimensions: labels, factory: factory)
        handshakeFailures = CoreMetrics.Counter(label: ProxyMetric.handshakeFailures.name, dimensions: labels, factory: factory)
        received = CoreMetrics.Counter(label: ProxyMetric.bytesReceived.name, dimensions: labels, factory: factory)
        sent = CoreMetrics.Counter(label: ProxyMetric.bytesSent.name, dimensions: labels, factory: factory)
        func denied(_ reason: String) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: ProxyMetric.denied.name, dimensions: [("proxy", proxy), ("reason", reason)], factory: factory)
        }
        deniedByIntention = denied("intention")
        deniedWithoutIdentity = denied("no_identity")
        authorizeFailed = denied("authorize_failed")
    }
}

/// What one upstream destination records.
struct UpstreamMetrics: Sendable {
    let dialFailures: CoreMetrics.Counter
    let dialDuration: CoreMetrics.Timer

    init(proxy: String, upstream: String, factory: any MetricsFactory) {
        let labels = [("proxy", proxy), ("upstream", upstream)]
        dialFailures = CoreMetrics.Counter(label: ProxyMetric.dialFailures.name, dimensions: labels, factory: factory)
        dialDuration = CoreMetrics.Timer(label: ProxyMetric.dialDuration.name, dimensions: labels, factory: factory)
    }
}
