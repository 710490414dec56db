import AgentConfig
import ConnectdCore
import Foundation
import Testing

/// Service checks: TTL updates and expiry, tcp and http probes, the health endpoints, the alias
/// behaviour of a managed proxy, the script fence, and checks of API services across a restart.
@Suite(.serialized) struct HealthCheckEndpointTests {
    func status(_ agent: TestAgent, _ id: String) async throws -> String? {
        try await agent.json("/v1/agent/checks")[id]?["Status"]?.stringValue
    }

    /// A loopback port nothing listens on right now.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    func waitFor(_ seconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test func ttlChecksAreUpdatedAndExpire() async throws {
        let config = #"{"service": {"name": "web", "port": 8080, "tags": ["v1"], "check": {"id": "web-ttl", "name": "heartbeat", "ttl": "1s", "notes": "beat"}}}"#
        try await TestAgent.with(files: ["w.json": config]) { agent in
            let checks = try await agent.json("/v1/agent/checks")
            let check = try #require(checks["web-ttl"])
            #expect(check.objectMembers?.map(\.0) == ["Node", "CheckID", "Name", "Status", "Notes", "Output", "ServiceID", "ServiceName",
                                                      "ServiceTags", "Definition", "CreateIndex", "ModifyIndex"])
            #expect(check["Status"] == .string("critical") && check["Notes"] == .string("beat"))
            #expect(check["ServiceName"] == .string("web") && check["ServiceTags"] == .array([.string("v1")]))
            #expect(try await agent.request("GET", "/v1/health/service/web?passing").text == "[]")

            #expect(try await agent.request("PUT", "/v1/agent/check/pass/web-ttl?note=all+good").status == 200)
            #expect(try await agent.json("/v1/agent/checks")["web-ttl"]?["Output"] == .string("all good"))
            let entries = try await agent.json("/v1/health/service/web?passing")
            guard case .array(let list) = entries, let entry = list.first else { Issue.record("\(entries)"); return }
            #expect(entry.objectMembers?.map(\.0) == ["Node", "Service", "Checks"])
            #expect(entry["Service"]?["ID"] == .string("web"))
            guard case .array(let entryChecks)? = entry["Checks"] else { Issue.record("no checks"); return }
            #expect(entryChecks.first?["Status"] == .string("passing"))
            guard case .array(let health) = try await agent.json("/v1/health/checks/web") else { Issue.record("not a list"); return }
            #expect(health.first?["CheckID"] == .string("web-ttl"))

            // No update within the TTL: critical again.
            #expect(try await waitFor(5) { try await status(agent, "web-ttl") == "critical" })
            #expect(try await agent.json("/v1/agent/checks")["web-ttl"]?["Output"] == .string("TTL expired"))

            let update = try await agent.request("PUT", "/v1/agent/check/update/web-ttl", body: #"{"Status": "warning", "Output": "slow"}"#)
            #expect(update.status == 200)
            #expect(try await status(agent, "web-ttl") == "warning")
            let bad = try await agent.request("PUT", "/v1/agent/check/update/web-ttl", body: #"{"Status": "fine"}"#)
            #expect(bad.status == 400 && bad.text == #"Invalid check status: "fine""#)
            let unknown = try await agent.request("PUT", "/v1/agent/check/pass/nosuch")
            #expect(unknown.status == 500 && unknown.text == #"CheckID "nosuch" does not have associated TTL"#)
            #expect(try await agent.request("GET", "/v1/agent/check/pass/web-ttl").status == 405)
        }
    }

    @Test func tcpAndHttpChecksProbe() async throws {
        let config = #"{"connect": {"proxy": {"allow_managed_api_registration": true}}}"#
        try await TestAgent.with(files: ["a.json": config]) { agent in
            let closed = Self.freePort()
            let body = """
            {"Name": "api", "Port": 9000, "Checks": [
              {"CheckID": "api-http", "Name": "self", "HTTP": "http://127.0.0.1:\(agent.port)/v1/agent/self", "Interval": "1s"},
              {"CheckID": "api-404", "Name": "missing", "HTTP": "http://127.0.0.1:\(agent.port)/nope", "Interval": "1s"},
              {"CheckID": "api-tcp", "Name": "port", "TCP": "127.0.0.1:\(agent.port)", "Interval": "1s"},
              {"CheckID": "api-closed", "Name": "closed", "TCP": "127.0.0.1:\(closed)", "Interval": "1s", "Status": "passing"}]}
            """
            #expect(try await agent.request("PUT", "/v1/agent/service/register", body: body).status == 200)
            let settled = try await waitFor(10) {
                let checks = try await agent.json("/v1/agent/checks")
                return checks["api-http"]?["Status"] == .string("passing") && checks["api-tcp"]?["Status"] == .string("passing")
                    && checks["api-404"]?["Status"] == .string("critical") && checks["api-closed"]?["Status"] == .string("critical")
            }
            let seen = try await agent.request("GET", "/v1/agent/checks").text
            #expect(settled, "\(seen)")
            let checks = try await agent.json("/v1/agent/checks")
            #expect(checks["api-http"]?["Output"]?.stringValue?.hasPrefix("HTTP GET http://127.0.0.1:\(agent.port)/v1/agent/self: 200 OK Output: {") == true)
            #expect(checks["api-404"]?["Output"]?.stringValue?.contains(": 404 Not Found Output: 404 page not found") == true)
            #expect(checks["api-tcp"]?["Output"] == .string("TCP connect 127.0.0.1:\(agent.port): Success"))
            #expect(checks["api-http"]?["Definition"] == .object([("HTTP", .string("http://127.0.0.1:\(agent.port)/v1/agent/self")),
                                                                   ("Method", .string("GET")), ("Interval", .string("1s")),
                                                                   ("Timeout", .string("10s"))]))
            #expect(try await agent.request("GET", "/v1/health/service/api?passing").text == "[]", "one failing check fails the service")
        }
    }

    @Test func aManagedProxyAliasesItsTargetsChecks() async throws {
        let config = #"{"services": [{"name": "db", "port": 5432, "check": {"id": "db-ttl", "ttl": "1m"}, "connect": {"proxy": {"command": ["/bin/true"]}}}]}"#
        try await TestAgent.with(files: ["d.json": config]) { agent in
            func alias() async throws -> JSONValue? {
                guard case .array(let entries) = try await agent.json("/v1/health/connect/db"), let entry = entries.first,
                      case .array(let checks)? = entry["Checks"] else { return nil }
                return checks.first { $0["CheckID"] == .string("service:db-proxy:alias") }
            }
            let before = try await alias()
            #expect(before?["Status"] == .string("critical"))
            #expect(before?["Output"] == .string("Service 'db' check is critical"))
            #expect(before?["Name"] == .string("Connect Sidecar Aliasing db"))
            #expect(try await agent.request("PUT", "/v1/agent/check/pass/db-ttl").status == 200)
            let after = try await alias()
            #expect(after?["Status"] == .string("passing"))
            #expect(after?["Output"] == .string("All checks passing."))
        }
    }

    @Test func scriptChecksNeedTheirSwitch() async throws {
        let script = #"{"Name": "s", "Port": 1, "Check": {"Args": ["/bin/true"], "Interval": "1s"}}"#
        try await TestAgent.with { agent in
            let refused = try await agent.request("PUT", "/v1/agent/service/register", body: script)
            #expect(refused.status == 500)
            #expect(refused.text == "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true")
        }
        // Local script checks run from files only; the API still needs enable_script_checks.
        let local = #"{"enable_local_script_checks": true, "service": {"name": "w", "port": 1, "check": {"id": "w-script", "args": ["/bin/sh", "-c", "echo degraded; exit 1"], "interval": "1s"}}}"#
        try await TestAgent.with(files: ["l.json": local]) { agent in
            let warned = try await waitFor(10) { try await status(agent, "w-script") == "warning" }
            #expect(warned)
            let output = try await agent.json("/v1/agent/checks")["w-script"]?["Output"]
            #expect(output == .string("degraded\n"))
            let viaAPI = try await agent.request("PUT", "/v1/agent/service/register", body: script)
            #expect(viaAPI.status == 500)
        }
        try await TestAgent.with(files: ["e.json": #"{"enable_script_checks": true}"#]) { agent in
            let registered = try await agent.request("PUT", "/v1/agent/service/register", body: script)
            #expect(registered.status == 200)
            let passed = try await waitFor(10) { try await status(agent, "service:s") == "passing" }
            #expect(passed)
        }
    }

    @Test func checksRegisteredThroughTheAPIPersistAndGoWithTheirService() async throws {
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("connectd-checkreg-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        try await TestAgent.with(dataDir: dataDir) { agent in
            let service = try await agent.request("PUT", "/v1/agent/service/register", body: #"{"Name": "api", "Port": 9000}"#)
            #expect(service.status == 200)
            let forService = try await agent.request("PUT", "/v1/agent/check/register",
                                                     body: #"{"Name": "api alive", "ServiceID": "api", "TTL": "1m"}"#)
            #expect(forService.status == 200)
            let node = try await agent.request("PUT", "/v1/agent/check/register", body: #"{"ID": "disk", "Name": "disk space", "TTL": "1m", "Status": "passing"}"#)
            #expect(node.status == 200)
            let unknown = try await agent.request("PUT", "/v1/agent/check/register", body: #"{"Name": "x", "ServiceID": "nosuch", "TTL": "1m"}"#)
            #expect(unknown.status == 500 && unknown.text == #"ServiceID "nosuch" does not exist"#)
            let nameless = try await agent.request("PUT", "/v1/agent/check/register", body: #"{"TTL": "1m"}"#)
            #expect(nameless.status == 400 && nameless.text == "Missing check name")
            let probeless = try await agent.request("PUT", "/v1/agent/check/register", body: #"{"Name": "x"}"#)
            #expect(probeless.status == 400 && probeless.text == "Invalid check: a check needs one of tcp, http, ttl or args")
            let passed = try await agent.request("PUT", "/v1/agent/check/pass/service:api")
            #expect(passed.status == 200)
            let checks = try await agent.json("/v1/agent/checks")
            #expect(checks["service:api"]?["Status"] == .string("passing") && checks["service:api"]?["ServiceName"] == .string("api"))
            #expect(checks["disk"]?["Status"] == .string("passing") && checks["disk"]?["ServiceID"] == .string(""))
        }
        try await TestAgent.with(dataDir: dataDir) { agent in
            let checks = try await agent.json("/v1/agent/checks")
            #expect(checks["service:api"]?["Name"] == .string("api alive"), "registered checks survive a restart")
            #expect(checks["disk"] != nil)
            let removed = try await agent.request("PUT", "/v1/agent/check/deregister/disk")
            #expect(removed.status == 200)
            let gone = try await agent.request("PUT", "/v1/agent/service/deregister/api")
            #expect(gone.status == 200)
            let after = try await agent.json("/v1/agent/checks")
            #expect(after["disk"] == nil && after["service:api"] == nil, "a deregistered service takes its checks along: \(after)")
            let again = try await agent.request("PUT", "/v1/agent/check/deregister/disk")
            #expect(again.status == 200, "an unknown check deregisters quietly, as in Consul")
        }
    }

    @Test func checksOfAnAPIServiceSurviveARestart() async throws {
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("connectd-checks-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        let body = #"{"Name": "api", "Port": 9000, "Check": {"TTL": "30s", "Notes": "n", "DeregisterCriticalServiceAfter": "90m"}}"#
        try await TestAgent.with(dataDir: dataDir) { agent in
            let registered = try await agent.request("PUT", "/v1/agent/service/register", body: body)
            #expect(registered.status == 200)
        }
        try await TestAgent.with(dataDir: dataDir) { agent in
            let check = try await agent.json("/v1/agent/checks")["service:api"]
            #expect(check?["Name"] == .string("Service 'api' check") && check?["Notes"] == .string("n"))
            #expect(check?["Definition"] == .object([("DeregisterCriticalServiceAfter", .string("1h30m0s"))]))
        }
    }
}
