import AgentConfig
import Testing

@Suite struct CheckConfigTests {
    @Test func readsEveryKindWithConsulsDefaults() throws {
        let dir = ConfigDirectory()
        dir.write("web.json", """
        {"enable_local_script_checks": true,
         "service": {"name": "web", "id": "web-1", "port": 8080, "checks": [
           {"http": "http://127.0.0.1:8080/health", "method": "post", "header": {"X-A": ["1", "2"], "X-B": "3"},
            "tls_skip_verify": true, "interval": "500ms", "timeout": "2s", "deregister_critical_service_after": "1m"},
           {"tcp": "127.0.0.1:8080", "interval": "5s", "status": "passing", "notes": "port open"},
           {"id": "web-ttl", "name": "heartbeat", "ttl": "30s"},
           {"args": ["/usr/local/bin/check-web", "-q"], "interval": "1m"}]},
         "check": {"name": "disk", "ttl": "1m"}}
        """)
        let config = try dir.load()
        let checks = try #require(config.services.first?.checks)
        #expect(checks.map(\.id) == ["service:web-1:1", "service:web-1:2", "web-ttl", "service:web-1:4"])
        #expect(checks.map(\.name) == ["Service 'web' check", "Service 'web' check", "heartbeat", "Service 'web' check"])
        #expect(checks.allSatisfy { $0.serviceID == "web-1" })
        var http = CheckDefinition.HTTPProbe(url: "http://127.0.0.1:8080/health")
        http.method = "POST"
        http.headers = ["X-A": ["1", "2"], "X-B": ["3"]]
        http.tlsSkipVerify = true
        #expect(checks[0].probe == .http(http))
        #expect(checks[0].interval == .seconds(1), "raised to Consul's 1 s minimum")
        #expect(checks[0].timeout == .seconds(2))
        #expect(checks[0].deregisterCriticalServiceAfter == .seconds(60))
        #expect(checks[0].initialStatus == .critical)
        #expect(checks[1].probe == .tcp("127.0.0.1:8080") && checks[1].initialStatus == .passing && checks[1].notes == "port open")
        #expect(checks[1].timeout == .seconds(10))
        #expect(checks[2].probe == .ttl(.seconds(30)))
        #expect(checks[3].probe == .script(["/usr/local/bin/check-web", "-q"]))
        #expect(config.enableLocalScriptChecks && !config.enableScriptChecks)
        #expect(config.checks.map(\.id) == ["disk"] && config.checks.first?.serviceID == nil)
    }

    @Test func aSingleCheckIsNamedAfterItsService() throws {
        let dir = ConfigDirectory()
        dir.write("db.json", #"{"service": {"name": "db", "port": 5432, "check": {"tcp": "127.0.0.1:5432", "interval": "10s"}}}"#)
        let check = try #require(try dir.load().services.first?.checks.first)
        #expect(check.id == "service:db" && check.name == "Service 'db' check")
    }

    @Test func duplicateCheckIDsAreNamed() {
        let problems = ConfigDirectory.problems(ofFile: "c.json", """
        {"services": [{"name": "a", "check": {"id": "x", "ttl": "1s"}}, {"name": "b", "check": {"id": "x", "ttl": "1s"}}]}
        """)
        #expect(problems == [#"c.json: services[1].check: duplicate check ID "x" (also at c.json: services[0].check)"#], "\(problems)")
    }
}
