import AgentConfig
import ConnectdCore
import CoreMetrics
import Synchronization
@testable import Telemetry
import Testing

/// A clock the test moves by hand.
final class ManualSeconds: Sendable {
    let value = Mutex<Int64>(1_764_000_000)
    func advance(_ seconds: Int64) { value.withLock { $0 += seconds } }
    var clock: IntervalClock { IntervalClock(now: { [self] in value.withLock { $0 } }) }
}

@Suite struct MetricsHubTests {
    @Test func consulSummaryHasConsulsShape() async throws {
        let time = ManualSeconds()
        let hub = MetricsHub(intervals: IntervalSink(clock: time.clock))
        let requests = CoreMetrics.Counter(label: "connectd_http_requests_total", dimensions: [("code", "200")], factory: hub.factory)
        let latency = CoreMetrics.Timer(label: "connectd_http_request_duration_seconds", factory: hub.factory)
        let parked = CoreMetrics.Gauge(label: "connectd_blocking_queries_parked", factory: hub.factory)
        requests.increment(by: 2)
        requests.increment(by: 4)
        latency.recordMilliseconds(3)
        parked.record(7)
        // Younger than one interval: the current one is shown.
        var summary = await hub.consulSummary()
        #expect(summary["Timestamp"]?.stringValue == "2025-11-24 16:00:00 +0000 UTC")
        #expect(summary["Points"] == .array([]))
        let counter = try #require(summary["Counters"]?.arrayValue?.first)
        #expect(counter.objectValue?.map(\.0) == ["Name", "Count", "Rate", "Sum", "Min", "Max", "Mean", "Stddev", "Labels"])
        #expect(counter["Name"]?.stringValue == "connectd_http_requests_total")
        #expect(counter["Count"] == .int(2))
        #expect(counter["Sum"] == .double(6))
        #expect(counter["Min"] == .double(2))
        #expect(counter["Max"] == .double(4))
        #expect(counter["Mean"] == .double(3))
        #expect(counter["Rate"] == .double(0.6))
        #expect(counter["Labels"] == .object([("code", .string("200"))]))
        let sample = try #require(summary["Samples"]?.arrayValue?.first)
        #expect(sample["Sum"] == .double(3), "timers are shown in milliseconds, as Consul's")
        let gauge = try #require(summary["Gauges"]?.arrayValue?.first)
        #expect(gauge.objectValue?.map(\.0) == ["Name", "Value", "Labels"])
        #expect(gauge["Value"] == .double(7))

        // Later the last finished interval is shown: a new interval's increments are not in it yet.
        time.advance(10)
        requests.increment(by: 1)
        summary = await hub.consulSummary()
        #expect(summary["Timestamp"]?.stringValue == "2025-11-24 16:00:00 +0000 UTC")
        #expect(summary["Counters"]?.arrayValue?.first?["Sum"] == .double(6))
        time.advance(10)
        summary = await hub.consulSummary()
        #expect(summary["Counters"]?.arrayValue?.first?["Sum"] == .double(1))
        time.advance(20)
        summary = await hub.consulSummary()
        #expect(summary["Counters"]?.arrayValue == [], "an interval with nothing recorded lists nothing")
        #expect(summary["Gauges"]?.arrayValue?.count == 1, "a gauge keeps its latest value")
    }

    @Test func prometheusTextHasHelpTypesAndTotals() async {
        let hub = MetricsHub()
        let requests = CoreMetrics.Counter(label: AgentMetric.httpRequests.name, dimensions: [("route", "/v1/agent/self"), ("code", "200")],
                                           factory: hub.factory)
        requests.increment()
        requests.increment()
        CoreMetrics.Timer(label: AgentMetric.httpRequestDuration.name, dimensions: [("route", "/v1/agent/self")], factory: hub.factory)
            .recordMilliseconds(20)
        let text = String(decoding: await hub.prometheusText(), as: UTF8.self)
        #expect(text.contains("# HELP connectd_http_requests_total \(AgentMetric.httpRequests.help)\n"), "\(text)")
        #expect(text.contains("# TYPE connectd_http_requests_total counter\n"))
        #expect(text.contains(#"connectd_http_requests_total{route="/v1/agent/self",code="200"} 2"#), "\(text)")
        #expect(text.contains("# TYPE connectd_http_request_duration_seconds histogram\n"))
        #expect(text.contains(#"connectd_http_request_duration_seconds_bucket{route="/v1/agent/self",le="0.025"} 1"#), "\(text)")
    }

    @Test func collectorsRunBeforeEachRendering() async {
        let hub = MetricsHub()
        let calls = Mutex(0)
        let gauge = CoreMetrics.Gauge(label: AgentMetric.intentions.name, factory: hub.factory)
        hub.addCollector { gauge.record(Double(calls.withLock { $0 += 1; return $0 })) }
        _ = await hub.prometheusText()
        let text = String(decoding: await hub.prometheusText(), as: UTF8.self)
        #expect(text.contains("connectd_intentions 2"), "\(text)")
        #expect(await hub.consulSummary()["Gauges"]?.arrayValue?.first?["Value"] == .double(3))
    }

    @Test func prefixFilterDropsMetrics() async {
        var settings = TelemetrySettings()
        settings.prefixFilter = ["-connectd_http_"]
        let rules = settings
        let hub = MetricsHub(keeps: { rules.keeps($0) })
        CoreMetrics.Counter(label: AgentMetric.httpRequests.name, factory: hub.factory).increment()
        CoreMetrics.Counter(label: AgentMetric.reloads.name, dimensions: [("outcome", "applied")], factory: hub.factory).increment()
        let text = String(decoding: await hub.prometheusText(), as: UTF8.self)
        #expect(!text.contains("connectd_http_requests_total"), "\(text)")
        #expect(text.contains(#"connectd_config_reloads_total{outcome="applied"} 1"#), "\(text)")
    }
}

extension JSONValue {
    var arrayValue: [JSONValue]? {
        guard case .array(let elements) = self else { return nil }
        return elements
    }

    var objectValue: [(String, JSONValue)]? {
        guard case .object(let members) = self else { return nil }
        return members
    }
}
