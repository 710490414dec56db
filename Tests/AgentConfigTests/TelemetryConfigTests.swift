import AgentConfig
import Testing

@Suite struct TelemetryConfigTests {
    @Test func readsConsulsTelemetryKeys() throws {
        let dir = ConfigDirectory()
        dir.write("agent.json", """
        {"telemetry": {"prometheus_retention_time": "30s", "disable_hostname": true, "filter_default": false,
                       "prefix_filter": ["+connectd_http_", "-connectd_http_request_duration"]}}
        """)
        let telemetry = try dir.load().telemetry
        #expect(telemetry.prometheusRetentionTime == .seconds(30))
        #expect(telemetry.disableHostname)
        #expect(!telemetry.filterDefault)
        #expect(telemetry.keeps("connectd_http_requests_total"))
        #expect(!telemetry.keeps("connectd_http_request_duration_seconds"), "the longer prefix wins")
        #expect(!telemetry.keeps("connectd_intentions"), "filter_default false drops what no rule names")
    }

    @Test func defaultsKeepEverything() throws {
        let telemetry = try ConfigDirectory().load().telemetry
        #expect(telemetry == TelemetrySettings())
        #expect(telemetry.keeps("connectd_anything"))
    }

    @Test func badValuesAndSinksAreNamed() {
        let problems = ConfigDirectory.problems(ofFile: "t.json", """
        {"telemetry": {"prometheus_retention_time": "soon", "prefix_filter": ["connectd_http"],
                       "statsd_address": "127.0.0.1:8125", "bogus": 1}}
        """)
        #expect(problems.contains(#"t.json: telemetry.prometheus_retention_time: invalid duration "soon" (Go syntax, e.g. 300ms, 5s, 1m30s)"#),
                "\(problems)")
        #expect(problems.contains(where: { $0.hasPrefix("t.json: telemetry.prefix_filter[0]: invalid rule \"connectd_http\"") }), "\(problems)")
        #expect(problems.contains(where: { $0.hasPrefix("t.json: telemetry.statsd_address: not supported") }), "\(problems)")
        #expect(problems.contains(#"t.json: telemetry.bogus: unknown key "bogus""#), "\(problems)")
    }
}
