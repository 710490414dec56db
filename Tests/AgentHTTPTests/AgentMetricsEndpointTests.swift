import ConnectdCore
import Foundation
import Testing
import TestSupport

/// `GET /v1/agent/metrics`: Consul's JSON shape, the Prometheus text (checked by promtool), ACLs.
@Suite struct AgentMetricsEndpointTests {
    func authorizeBody(_ agent: TestAgent, client: String) -> String {
        let uri = "spiffe://\(agent.agent.state.snapshot.ca.trustDomain)/ns/default/dc/dc1/svc/\(client)"
        return #"{"Target":"db","ClientCertURI":"\#(uri)","ClientCertSerial":"04"}"#
    }

    @Test func jsonHasConsulsKeysAndTypes() async throws {
        try await TestAgent.with { agent in
            for _ in 0..<3 { _ = try await agent.request("GET", "/v1/agent/self") }
            let response = try await agent.request("GET", "/v1/agent/metrics")
            #expect(response.status == 200)
            #expect(response.header("Content-Type") == "application/json")
            let summary = try JSONParser.parse(response.body)
            guard case .object(let members) = summary else { Issue.record("not an object: \(response.text)"); return }
            #expect(members.map(\.0) == ["Timestamp", "Gauges", "Points", "Counters", "Samples"])
            let timestamp = try #require(summary["Timestamp"]?.stringValue)
            #expect(timestamp.hasSuffix(" +0000 UTC") && timestamp.count == 29, "\(timestamp)")
            #expect(summary["Points"] == .array([]))
            guard case .array(let gauges)? = summary["Gauges"], case .array(let counters)? = summary["Counters"],
                  case .array(let samples)? = summary["Samples"] else { Issue.record("\(response.text)"); return }
            #expect(gauges.contains { $0["Name"]?.stringValue == "connectd_config_problems" })
            for gauge in gauges {
                guard case .object(let keys) = gauge, case .string? = gauge["Name"], case .object? = gauge["Labels"] else {
                    Issue.record("gauge \(gauge)"); continue
                }
                #expect(keys.map(\.0) == ["Name", "Value", "Labels"])
                #expect(gauge["Value"]?.isNumber == true)
            }
            for entry in counters + samples {
                guard case .object(let keys) = entry else { Issue.record("\(entry)"); continue }
                #expect(keys.map(\.0) == ["Name", "Count", "Rate", "Sum", "Min", "Max", "Mean", "Stddev", "Labels"])
                #expect(entry["Count"].map { if case .int = $0 { true } else { false } } == true)
                for key in ["Rate", "Sum", "Min", "Max", "Mean", "Stddev"] { #expect(entry[key]?.isNumber == true, "\(key) of \(entry)") }
            }
        }
    }

    @Test func prometheusTextCountsRequestsAndDecisionsAndPassesPromtool() async throws {
        try await TestAgent.with(files: ["i.json": #"{"intentions": [{"source_name": "evil", "destination_name": "db", "action": "deny"}]}"#]) { agent in
            _ = try await agent.request("GET", "/v1/agent/self")
            _ = try await agent.request("GET", "/v1/no/such/path/\(UUID().uuidString)")
            #expect(try await agent.request("POST", "/v1/agent/connect/authorize", body: authorizeBody(agent, client: "web")).status == 200)
            #expect(try await agent.request("POST", "/v1/agent/connect/authorize", body: authorizeBody(agent, client: "evil")).status == 200)
            #expect(try await agent.request("POST", "/v1/agent/connect/authorize", body: authorizeBody(agent, client: "evil")).status == 200)
            let response = try await agent.request("GET", "/v1/agent/metrics?format=prometheus")
            #expect(response.status == 200)
            #expect(response.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
            let text = response.text
            #expect(text.contains(#"connectd_http_requests_total{route="/v1/agent/self",method="GET",code="200"} 1"#), "\(text)")
            #expect(text.contains(#"connectd_http_requests_total{route="unmatched",method="GET",code="404"} 1"#), "\(text)")
            #expect(text.contains(#"connectd_authorize_decisions_total{result="allowed"} 1"#), "\(text)")
            #expect(text.contains(#"connectd_authorize_decisions_total{result="denied"} 2"#), "\(text)")
            #expect(text.contains("connectd_intentions 1"), "\(text)")
            #expect(text.contains("# HELP connectd_ca_root_expiry_seconds "))
            #expect(text.contains(#"connectd_managed_proxies{state="running"} 0"#), "\(text)")
            #expect(!text.contains("UUID"), "no raw path becomes a label")
            let check = try runProcess("/usr/bin/promtool", ["check", "metrics"], stdin: response.body)
            #expect(check.status == 0, "promtool check metrics: \(check.output)\n\(text)")
        }
    }

    @Test func needsAgentRead() async throws {
        let acl = #"{"acl": {"enabled": true, "default_policy": "deny", "tokens": {"master": "root-secret"}}}"#
        try await TestAgent.with(files: ["acl.json": acl]) { agent in
            for target in ["/v1/agent/metrics", "/v1/agent/metrics?format=prometheus"] {
                let denied = try await agent.request("GET", target)
                #expect(denied.status == 403 && denied.text == "Permission denied", "\(target): \(denied.status) \(denied.text)")
                #expect(try await agent.request("GET", target, headers: [("X-Consul-Token", "root-secret")]).status == 200)
            }
        }
    }
}

extension JSONValue {
    var isNumber: Bool {
        switch self {
        case .int, .double: true
        default: false
        }
    }
}
