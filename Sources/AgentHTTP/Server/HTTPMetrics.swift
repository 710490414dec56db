// The HTTP API's own metrics: requests by route pattern, method and status, and their latency.
// Labels come from the route table, never from the raw path, so a client cannot add series.

import CoreMetrics
import Synchronization
import Telemetry

public final class HTTPMetrics: Sendable {
    private struct Key: Hashable {
        let route: String
        let method: String
        let code: Int
    }

    private struct Handles {
        let requests: CoreMetrics.Counter
        let duration: CoreMetrics.Timer
    }

    private let factory: any MetricsFactory
    private let handles = Mutex<[Key: Handles]>([:])
    /// Methods kept as labels; any other is counted as `other`.
    private static let methods: Set<String> = ["GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH"]

    public init(factory: any MetricsFactory) { self.factory = factory }

    /// One answered request: `route` is the pattern that served it (nil: no route matched).
    func record(route: String?, method: String, code: Int, elapsed: Duration) {
        let key = Key(route: route ?? "unmatched", method: Self.methods.contains(method) ? method : "other", code: code)
        let handles = handles.withLock { handles in
            if let existing = handles[key] { return existing }
            let made = Handles(
                requests: CoreMetrics.Counter(label: AgentMetric.httpRequests.name,
                                              dimensions: [("route", key.route), ("method", key.method), ("code", String(code))],
                                              factory: factory),
                duration: CoreMetrics.Timer(label: AgentMetric.httpRequestDuration.name,
                                            dimensions: [("route", key.route), ("method", key.method)], factory: factory))
            handles[key] = made
            return made
        }
        handles.requests.increment()
        handles.duration.record(elapsed: elapsed)
    }
}
