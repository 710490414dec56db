import ConnectdCore
import Foundation
import Testing

/// An application's health decides its traffic: db has an HTTP check against its own
/// `connectd demo-http`; when db stops, the check turns critical, db's proxy leaves
/// `?passing`, and web's upstream stops dialing it; db back, traffic back.
@Suite(.serialized) struct HealthCheckTests {
    @Test(.timeLimit(.minutes(2))) func aFailingApplicationStopsReceivingTraffic() throws {
        let demo = try ConnectProxyTests.Demo(label: "checks",
                                              dbService: #""check": {"id": "db-http", "http": "http://127.0.0.1:DBPORT/", "interval": "1s", "timeout": "1s"}"#)
        var restarted: Process?
        defer {
            restarted?.terminate()
            restarted?.waitUntilExit()
            demo.stop()
        }
        func passing() -> [JSONValue] {
            guard let response = try? demo.agent.get("/v1/health/connect/db?passing"),
                  case .array(let entries) = try? JSONParser.parse(response.body) else { return [] }
            return entries
        }
        func checkStatus() -> String? {
            (try? JSONParser.parse(try demo.agent.get("/v1/agent/checks").body))?["db-http"]?["Status"]?.stringValue
        }
        #expect(demo.waitUntil(reachable: true), "web's upstream never reached db; log:\n\(demo.agent.log)")
        #expect(demo.wait(seconds: 10) { checkStatus() == "passing" && passing().count == 1 } != nil)

        // db's process stops: critical within two intervals, out of ?passing, no more traffic.
        demo.services[1].terminate()
        demo.services[1].waitUntilExit()
        let critical = demo.wait(seconds: 5) { checkStatus() == "critical" }
        #expect(critical.map { $0 <= 2.5 } == true, "critical after \(critical.map { String($0) } ?? "never") s (interval 1 s)")
        #expect(demo.wait(seconds: 3) { passing().isEmpty } != nil, "db's proxy leaves /v1/health/connect/db?passing")
        let entries = try JSONParser.parse(try demo.agent.get("/v1/health/connect/db").body)
        if case .array(let all) = entries, case .array(let checks)? = all.first?["Checks"] {
            #expect(checks.contains { $0["CheckID"] == .string("service:db-proxy:alias") && $0["Status"] == .string("critical") }, "\(checks)")
        } else {
            Issue.record("no db-proxy entry: \(entries)")
        }
        #expect(demo.wait(seconds: 5) { demo.throughUpstream() == nil } != nil, "web's upstream stops dialing db")
        for _ in 0..<3 { #expect(demo.throughUpstream() == nil) }
        let webLog = try String(contentsOfFile: demo.dir + "/data/proxy/logs/web-proxy-stderr.log", encoding: .utf8)
        #expect(webLog.contains("no healthy instance"), "\(webLog.suffix(800))")

        // db back on its port: passing again, traffic again.
        restarted = try startDemoHTTP("db", port: demo.dbPort)
        #expect(demo.wait(seconds: 10) { checkStatus() == "passing" } != nil)
        #expect(demo.waitUntil(reachable: true, seconds: 10), "traffic returns when db is healthy again")
    }
}
