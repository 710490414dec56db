import ConnectdCore
import Foundation
import Testing
import TestSupport

/// A real Prometheus server (Debian's `prometheus`) scrapes the agent and db's proxy every second;
/// what it stores is read back through its HTTP API.
@Suite(.serialized) struct PrometheusTests {
    /// `prometheus` on a free loopback port, its data in `dir`, stopped by PID.
    final class PrometheusServer: @unchecked Sendable {
        let process = Process()
        let port = freeLoopbackPort()
        let log: Pipe

        init(dir: String, agentPort: Int, proxyPort: Int) throws {
            let config = """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: connectd-agent
                metrics_path: /v1/agent/metrics
                params:
                  format: [prometheus]
                static_configs:
                  - targets: ['127.0.0.1:\(agentPort)']
              - job_name: connectd-proxies
                static_configs:
                  - targets: ['127.0.0.1:\(proxyPort)']
            """
            try config.write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
            process.arguments = ["--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/prometheus-data",
                                 "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn"]
            log = Pipe()
            process.standardOutput = log
            process.standardError = log
            try process.run()
        }

        /// The result vector of an instant query; [] when Prometheus is not answering yet.
        func query(_ expression: String) -> [(labels: JSONValue, value: Double)] {
            let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? expression
            guard let response = try? SimpleHTTPClient.send(method: "GET", host: "127.0.0.1", port: port,
                                                            target: "/api/v1/query?query=\(encoded)", timeoutSeconds: 5),
                  response.status == 200, let document = try? JSONParser.parse(response.body),
                  case .array(let results)? = document["data"]?["result"] else { return [] }
            return results.compactMap { result in
                guard case .array(let pair)? = result["value"], pair.count == 2, let value = pair[1].stringValue.flatMap(Double.init) else {
                    return nil
                }
                return (result["metric"] ?? .null, value)
            }
        }

        /// Polls `expression` until `condition` holds on its results (at most `seconds`).
        func wait(_ expression: String, seconds: Double = 30, _ condition: ([(labels: JSONValue, value: Double)]) -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if condition(query(expression)) { return true }
                Thread.sleep(forTimeInterval: 0.25)
            }
            return false
        }

        func stop() {
            process.terminate()
            process.waitUntilExit()
        }
    }

    @Test(.timeLimit(.minutes(3))) func prometheusSeesTheAgentAndAProxyDenialsAndRestarts() throws {
        let metricsPort = freeLoopbackPort()
        let demo = try ConnectProxyTests.Demo(label: "prometheus", dbProxyConfig: #""prometheus_bind_addr": "127.0.0.1:\#(metricsPort)""#)
        defer { demo.stop() }
        #expect(demo.waitUntil(reachable: true), "web's upstream never reached db; log:\n\(demo.agent.log)")
        for _ in 0..<5 { #expect(demo.throughUpstream() == "hello from db\n") }

        // Both outputs pass promtool as they are served.
        let proxyText = try SimpleHTTPClient.send(method: "GET", host: "127.0.0.1", port: metricsPort, target: "/metrics")
        #expect(proxyText.status == 200)
        #expect(proxyText.text.contains(#"connectd_proxy_connections_accepted_total{proxy="db-proxy",listener="public"}"#), "\(proxyText.text)")
        #expect(!proxyText.text.lowercased().contains("token"), "no token in the labels")
        let agentText = try demo.agent.get("/v1/agent/metrics?format=prometheus")
        for (what, body) in [("proxy", proxyText.body), ("agent", agentText.body)] {
            let check = try runProcess("/usr/bin/promtool", ["check", "metrics"], stdin: body)
            #expect(check.status == 0, "promtool check metrics (\(what)): \(check.output)")
        }

        let prometheus = try PrometheusServer(dir: demo.dir, agentPort: demo.agent.port, proxyPort: metricsPort)
        defer { prometheus.stop() }
        #expect(prometheus.wait("up") { results in results.count == 2 && results.allSatisfy { $0.value == 1 } },
                "both targets up: \(prometheus.query("up"))")
        #expect(prometheus.wait(#"connectd_proxy_received_bytes_total{proxy="db-proxy",listener="public"}"#) { $0.first.map { $0.value > 0 } == true },
                "bytes through db's proxy")

        // A deny intention: the proxy's denied counter rises, as Prometheus sees it.
        let created = try demo.post("/v1/connect/intentions", #"{"SourceName":"web","DestinationName":"db","Action":"deny"}"#)
        #expect(created.status == 200)
        #expect(demo.wait(seconds: 5) { demo.throughUpstream() == nil } != nil, "the deny intention refuses connections")
        #expect(prometheus.wait(#"connectd_proxy_inbound_denied_total{proxy="db-proxy",reason="intention"}"#) { $0.first.map { $0.value >= 1 } == true },
                "denials through Prometheus: \(prometheus.query("connectd_proxy_inbound_denied_total"))")

        // kill -9 of db's proxy: the agent restarts it and counts the restart by its cause.
        let proxies = try JSONParser.parse(try demo.agent.get("/v1/agent/proxies").body)
        guard case .array(let list) = proxies, let db = list.first(where: { $0["ID"]?.stringValue == "db-proxy" }),
              case .int(let pid)? = db["Pid"] else { Issue.record("no db-proxy pid in \(proxies)"); return }
        #expect(kill(pid_t(pid), SIGKILL) == 0)
        #expect(prometheus.wait(#"connectd_proxy_restarts_total{proxy="db-proxy",cause="signal_KILL"}"#) { $0.first.map { $0.value >= 1 } == true },
                "restarts through Prometheus: \(prometheus.query("connectd_proxy_restarts_total"))\n\(demo.agent.log.suffix(2000))")
        #expect(prometheus.wait(#"up{job="connectd-proxies"}"#) { $0.first?.value == 1 }, "the restarted proxy serves its metrics again")
    }
}
