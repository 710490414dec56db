import AgentConfig
import ConnectdCore
import Foundation
import Testing

let webProxyConfig = """
{"service": {"name": "web", "port": 8080, "connect": {"proxy": {"command": ["/bin/true"], "config": {"foo": "bar"},
  "upstreams": [{"destination_name": "db", "local_bind_port": 9191}]}}}}
"""

/// GET /v1/agent/connect/proxy/:id and GET /v1/agent/service/:id with hash blocking (goldens 30–3b, 70, 71).
@Suite struct BlockingEndpointTests {
    @Test func proxyConfigHasTheGoldenShape() async throws {
        try await TestAgent.with(files: ["web.json": webProxyConfig]) { agent in
            let response = try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy")
            #expect(response.status == 200)
            #expect(response.header("Content-Type") == "application/json")
            #expect(response.header("X-Consul-Index") == nil)
            let body = try JSONParser.parse(response.body)
            #expect(body.objectMembers?.map(\.0) == ["ProxyServiceID", "TargetServiceID", "TargetServiceName", "ContentHash",
                                                     "ExecMode", "Command", "Config", "Upstreams"])
            #expect(response.header("X-Consul-Contenthash") == body["ContentHash"]?.stringValue)
            #expect(body["ExecMode"] == .string("daemon"))
            #expect(body["Command"] == .array([.string("/bin/true")]))
            let config = try #require(body["Config"])
            #expect(config.objectMembers?.map(\.0) == ["bind_address", "bind_port", "foo", "local_service_address"])
            #expect(config["local_service_address"] == .string("127.0.0.1:8080"))
            #expect(body["Upstreams"] == .array([.object([("DestinationType", .string("service")), ("DestinationName", .string("db")),
                                                          ("LocalBindPort", .int(9191))])]))
        }
    }

    @Test func theProxysOwnTokenAddsTelemetry() async throws {
        try await TestAgent.with(files: ["web.json": webProxyConfig]) { agent in
            let token = try #require(agent.agent.state.snapshot.proxies["web-proxy"]?.token)
            for target in ["/v1/agent/connect/proxy/web-proxy", "/v1/agent/service/web-proxy"] {
                let withToken = try JSONParser.parse(try await agent.request("GET", target, headers: [("X-Consul-Token", token)]).body)
                let telemetry = withToken["Config"]?["telemetry"] ?? withToken["Proxy"]?["Config"]?["telemetry"]
                #expect(telemetry == .object([("filter_default", .bool(true)), ("metrics_prefix", .string("consul.proxy.web"))]), "\(target)")
                let query = try JSONParser.parse(try await agent.request("GET", target + "?token=\(token)").body)
                #expect(query["Config"]?["telemetry"] != nil || query["Proxy"]?["Config"]?["telemetry"] != nil)
                let other = try JSONParser.parse(try await agent.request("GET", target, headers: [("X-Consul-Token", "bogus-token")]).body)
                #expect(other["Config"]?["telemetry"] == nil && other["Proxy"]?["Config"]?["telemetry"] == nil)
            }
        }
    }

    @Test func unknownAndNonProxyIDsAre404() async throws {
        try await TestAgent.with(files: ["web.json": webProxyConfig]) { agent in
            for id in ["nosuch-proxy", "web"] {
                let response = try await agent.request("GET", "/v1/agent/connect/proxy/\(id)")
                #expect(response.status == 404)
                #expect(response.text == "unknown proxy service ID: \(id)")
            }
            let bad = try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy?hash=abc&wait=xyz")
            #expect(bad.status == 400)
            #expect(bad.text == "Invalid wait time")
            let options = try await agent.request("OPTIONS", "/v1/agent/connect/proxy/web-proxy")
            #expect(options.header("Allow") == "OPTIONS,GET")
        }
    }

    @Test func sameHashWaitsTheFullWaitAndIndexIsIgnored() async throws {
        try await TestAgent.with(files: ["web.json": webProxyConfig]) { agent in
            let first = try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy")
            let hash = try #require(first.header("X-Consul-Contenthash"))
            let started = Date()
            let same = try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy?hash=\(hash)&wait=400ms")
            let elapsed = Date().timeIntervalSince(started)
            #expect(same.status == 200)
            #expect(same.header("X-Consul-Contenthash") == hash)
            #expect(elapsed >= 0.39 && elapsed < 3, "\(elapsed)")
            let noHash = Date()
            _ = try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy?wait=5s&index=1000")
            #expect(Date().timeIntervalSince(noHash) < 2)
            let other = Date()
            let different = try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy?hash=123456789abcd&wait=5s")
            #expect(Date().timeIntervalSince(other) < 2)
            #expect(different.header("X-Consul-Contenthash") == hash)
        }
    }

    @Test func aReloadThatChangesConfigWakesTheWatcherWithTheNewHash() async throws {
        try await TestAgent.with(files: ["web.json": webProxyConfig]) { agent in
            for target in ["/v1/agent/connect/proxy/web-proxy", "/v1/agent/service/web-proxy"] {
                let hash = try #require(try await agent.request("GET", target).header("X-Consul-Contenthash"))
                async let blocked = agent.request("GET", target + "?hash=\(hash)&wait=30s")
                try await Task.sleep(for: .milliseconds(200))
                let value = UUID().uuidString
                try agent.writeConfig("web.json", webProxyConfig.replacingOccurrences(of: #""foo": "bar""#, with: #""foo": "\#(value)""#))
                let changedAt = Date()
                #expect(try await agent.request("PUT", "/v1/agent/reload").status == 200)
                let answer = try await blocked
                #expect(Date().timeIntervalSince(changedAt) < 2)
                #expect(answer.header("X-Consul-Contenthash") != hash)
                #expect(answer.text.contains(value))
            }
        }
    }

    @Test func aReloadThatOnlyChangesProxyDefaultsWakesTheWatcher() async throws {
        try await TestAgent.with(files: ["web.json": webProxyConfig]) { agent in
            let hash = try #require(try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy").header("X-Consul-Contenthash"))
            async let blocked = agent.request("GET", "/v1/agent/connect/proxy/web-proxy?hash=\(hash)&wait=30s")
            try await Task.sleep(for: .milliseconds(200))
            try agent.writeConfig("defaults.json", #"{"connect": {"proxy_defaults": {"config": {"connect_timeout_ms": 777}}}}"#)
            let changedAt = Date()
            #expect(try await agent.request("PUT", "/v1/agent/reload").status == 200)
            let answer = try await blocked
            #expect(Date().timeIntervalSince(changedAt) < 2)
            #expect(answer.header("X-Consul-Contenthash") != hash)
            #expect(try JSONParser.parse(answer.body)["Config"]?["connect_timeout_ms"] == .int(777))
        }
    }

    @Test func aChangeThatKeepsTheBodyKeepsBlocking() async throws {
        try await TestAgent.with(files: ["web.json": webProxyConfig]) { agent in
            let hash = try #require(try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy").header("X-Consul-Contenthash"))
            let started = Date()
            async let blocked = agent.request("GET", "/v1/agent/connect/proxy/web-proxy?hash=\(hash)&wait=1s")
            try await Task.sleep(for: .milliseconds(200))
            // Another service changes: the index moves, this proxy's body does not.
            #expect(try await agent.request("PUT", "/v1/agent/service/register", body: #"{"Name": "other", "Port": 1}"#).status == 200)
            let answer = try await blocked
            #expect(Date().timeIntervalSince(started) >= 0.95)
            #expect(answer.header("X-Consul-Contenthash") == hash)
        }
    }

    @Test func removingTheProxyWhileWaitingAnswers404() async throws {
        try await TestAgent.with(files: ["allow.json": #"{"connect": {"proxy": {"allow_managed_api_registration": true}}}"#]) { agent in
            #expect(try await agent.request("PUT", "/v1/agent/service/register",
                                            body: #"{"Name": "api", "Port": 8080, "Connect": {"Proxy": {"Command": ["/bin/true"]}}}"#).status == 200)
            let hash = try #require(try await agent.request("GET", "/v1/agent/connect/proxy/api-proxy").header("X-Consul-Contenthash"))
            async let blocked = agent.request("GET", "/v1/agent/connect/proxy/api-proxy?hash=\(hash)&wait=30s")
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await agent.request("PUT", "/v1/agent/service/deregister/api").status == 200)
            let answer = try await blocked
            #expect(answer.status == 404)
            #expect(answer.text == "unknown proxy service ID: api-proxy")
        }
    }

    @Test func gzipWhenAccepted() async throws {
        try await TestAgent.with(files: ["web.json": webProxyConfig]) { agent in
            let response = try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy", headers: [("Accept-Encoding", "gzip")])
            #expect(response.status == 200)
            #expect(response.header("Content-Encoding") == "gzip")
            #expect(response.header("Vary") == "Accept-Encoding")
            #expect(response.body.starts(with: [0x1f, 0x8b]))
            let plain = try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy")
            #expect(plain.header("Content-Encoding") == nil)
        }
    }

    @Test func aGoStyleClientLoopSeesEveryChangeWithoutBusyLooping() async throws {
        try await TestAgent.with(files: ["allow.json": #"{"connect": {"proxy": {"allow_managed_api_registration": true}}}"#]) { agent in
            func register(_ value: Int) async throws {
                let body = #"{"Name": "api", "Port": 8080, "Connect": {"Proxy": {"Command": ["/bin/true"], "Config": {"v": \#(value)}}}}"#
                #expect(try await agent.request("PUT", "/v1/agent/service/register", body: body).status == 200)
            }
            try await register(0)
            let watcher = Task { () -> [Int64] in
                var seen: [Int64] = []
                var hash = ""
                var requests = 0
                while seen.last != 5 && requests < 50 {
                    requests += 1
                    let response = try await agent.request("GET", "/v1/agent/connect/proxy/api-proxy?hash=\(hash)&wait=10s")
                    hash = response.header("X-Consul-Contenthash") ?? ""
                    if case .int(let value)? = try JSONParser.parse(response.body)["Config"]?["v"], seen.last != value { seen.append(value) }
                }
                return seen
            }
            for value in 1...5 {
                try await Task.sleep(for: .milliseconds(150))
                try await register(value)
            }
            let seen = try await watcher.value
            #expect(seen == [0, 1, 2, 3, 4, 5])
        }
    }

    @Test func aClientThatGoesAwayFreesItsParkedWatcher() async throws {
        try await TestAgent.with(files: ["web.json": webProxyConfig]) { agent in
            let hash = try #require(try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy").header("X-Consul-Contenthash"))
            let rootsIndex = try #require(try await agent.request("GET", "/v1/agent/connect/ca/roots").header("X-Consul-Index"))
            let leafIndex = try #require(try await agent.request("GET", "/v1/agent/connect/ca/leaf/web").header("X-Consul-Index"))
            let leafWatch = try #require(agent.agent.leaves.cachedWithWatch(.init(service: "web", token: ""))?.watch)
            // Config (hash), roots and a cached leaf (index): each parks on its own watch, by callback.
            for (target, watch) in [("/v1/agent/connect/proxy/web-proxy?hash=\(hash)", agent.agent.state.watch),
                                    ("/v1/agent/connect/ca/roots?index=\(rootsIndex)", agent.agent.state.rootsWatch),
                                    ("/v1/agent/connect/ca/leaf/web?index=\(leafIndex)", leafWatch)] {
                let before = watch.waiterCount
                let fd = try SimpleHTTPClient.connect(host: "127.0.0.1", port: agent.port, timeoutSeconds: 10)
                let request = Array("GET \(target)&wait=5m HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
                _ = request.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, 0) }
                try await waitUntil { watch.waiterCount == before + 1 }
                close(fd)
                try await waitUntil { watch.waiterCount == before }
            }
        }
    }
}

/// Polls `condition` every 10 ms for up to 10 s.
func waitUntil(_ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    for _ in 0..<1000 {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("condition not met within 10 s", sourceLocation: sourceLocation)
}
