// The one metrics registry of a process: handlers made by `factory` record into Prometheus'
// registry and Consul's intervals at once, unless `telemetry.prefix_filter` drops the metric.
// Gauges read from state (expiry, proxies by state) are refreshed by collectors just before a
// rendering, so nothing polls in the background.

import ConnectdCore
import CoreMetrics
import Prometheus
import Synchronization

public final class MetricsHub: Sendable {
    /// Makes the handlers every module records into (pass it as swift-metrics' `factory:`).
    public let factory: any MetricsFactory
    private let registry = PrometheusCollectorRegistry()
    private let intervals: IntervalSink?
    private let collectors = Mutex<[@Sendable () async -> Void]>([])

    /// - Parameters:
    ///   - catalog: the metrics' help texts, by name.
    ///   - keeps: whether the metric of a name is recorded (`telemetry.prefix_filter`).
    ///   - intervals: also keep Consul's in-memory intervals (the agent's JSON form); a proxy
    ///     serves Prometheus text only.
    public convenience init(catalog: [MetricDefinition] = AgentMetric.all, keeps: @escaping @Sendable (String) -> Bool = { _ in true },
                            intervals: Bool = true) {
        self.init(catalog: catalog, keeps: keeps, intervals: intervals ? IntervalSink(clock: IntervalClock()) : nil)
    }

    init(catalog: [MetricDefinition] = AgentMetric.all, keeps: @escaping @Sendable (String) -> Bool = { _ in true },
         intervals: IntervalSink?) {
        let help = Dictionary(catalog.map { ($0.name, $0.help) }, uniquingKeysWith: { first, _ in first })
        self.intervals = intervals
        let prometheus = PrometheusSide(registry: registry, help: help)
        let kept: any MetricsFactory = intervals.map { MultiplexMetricsHandler(factories: [prometheus, $0]) } ?? prometheus
        factory = FilteredFactory(kept: kept, keeps: keeps)
    }

    /// Runs `collect` before every rendering (it sets gauges from current state; it may ask
    /// actors, so keep it to reads).
    public func addCollector(_ collect: @escaping @Sendable () async -> Void) {
        collectors.withLock { $0.append(collect) }
    }

    private func collect() async {
        for collect in collectors.withLock({ $0 }) { await collect() }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    public func prometheusText() async -> [UInt8] {
        await collect()
        return registry.emitToBuffer()
    }

    /// Consul 1.5.3's `/v1/agent/metrics` JSON document.
    public func consulSummary() async -> JSONValue {
        await collect()
        return (intervals ?? IntervalSink()).summary()
    }

    /// The content type of ``prometheusText()``.
    public static let prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// Drops the metrics `telemetry.prefix_filter` rules out (no-op handlers cost nothing to call).
struct FilteredFactory: MetricsFactory {
    let kept: any MetricsFactory
    let keeps: @Sendable (String) -> Bool

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        keeps(label) ? kept.makeCounter(label: label, dimensions: dimensions) : NOOPMetricsHandler.instance
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        keeps(label) ? kept.makeFloatingPointCounter(label: label, dimensions: dimensions) : NOOPMetricsHandler.instance
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        keeps(label) ? kept.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate) : NOOPMetricsHandler.instance
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        keeps(label) ? kept.makeMeter(label: label, dimensions: dimensions) : NOOPMetricsHandler.instance
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        keeps(label) ? kept.makeTimer(label: label, dimensions: dimensions) : NOOPMetricsHandler.instance
    }

    func destroyCounter(_ handler: any CounterHandler) { kept.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { kept.destroyFloatingPointCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { kept.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { kept.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { kept.destroyTimer(handler) }
}
