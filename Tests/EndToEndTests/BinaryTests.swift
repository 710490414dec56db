import ConnectdCore
import Foundation
import Testing

/// The built binary, run as a user would.
@Suite(.serialized) struct BinaryTests {
    @Test func versionPrints() throws {
        let result = try runConnectd(["version"])
        #expect(result.status == 0)
        #expect(result.output.hasPrefix("connectd v"))
    }

    @Test func validateReportsEveryProblemAndExits1() throws {
        let dir = makeTemporaryDirectory("validate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"service": {"name": "web", "connect": {"proxy": {"exec_mode": "deamon"}}}, "bogus": true}"#
            .write(toFile: dir + "/web.json", atomically: true, encoding: .utf8)
        let bad = try runConnectd(["validate", dir])
        #expect(bad.status == 1)
        #expect(bad.output.contains(#"web.json: service.connect.proxy.exec_mode: invalid exec mode "deamon" (expected daemon or script)"#))
        #expect(bad.output.contains("web.json: service.port: Services with a Connect managed proxy must have a port set"))
        #expect(bad.output.contains(#"web.json: bogus: unknown key "bogus""#))
        #expect(bad.output.contains("3 problem(s) found"))

        try #"{"service": {"name": "web", "port": 80, "connect": {"proxy": {}}}}"#
            .write(toFile: dir + "/web.json", atomically: true, encoding: .utf8)
        let good = try runConnectd(["validate", dir + "/web.json"])
        #expect(good.status == 0, "\(good.output)")
        #expect(good.output.contains("Configuration is valid!"))
    }

    @Test func validateReadsHCLAndPlacesItsErrors() throws {
        let dir = makeTemporaryDirectory("hcl")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "service {\n  name = \"web\"\n  port = 8080\n  connect { proxy {} }\n}\n".write(toFile: dir + "/web.hcl", atomically: true, encoding: .utf8)
        let good = try runConnectd(["validate", dir])
        #expect(good.status == 0 && good.output.contains("(1 services, 1 managed proxies)"), "\(good.output)")
        try "service {\n  name = \"db\"\n  port = 54 32\n}\n".write(toFile: dir + "/db.hcl", atomically: true, encoding: .utf8)
        let bad = try runConnectd(["validate", dir])
        #expect(bad.status == 1)
        #expect(bad.output.contains("\(dir)/db.hcl:3:13: invalid HCL: unexpected \"3\" (expected a key)"), "\(bad.output)")
    }

    @Test func shippedExamplesAndDemoConfigsAreValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for directory in ["contrib/examples", "contrib/dev"] {
            let result = try runConnectd(["validate", root.appendingPathComponent(directory).path])
            #expect(result.status == 0, "\(directory): \(result.output)")
        }
    }

    @Test func agentRefusesAnInvalidConfigBeforeStarting() throws {
        let dir = makeTemporaryDirectory("refuse")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"ports": {"http": "x"}}"#.write(toFile: dir + "/a.json", atomically: true, encoding: .utf8)
        // The unit's `-flag=value` spelling.
        let result = try runConnectd(["agent", "-data-dir=\(dir)/data", "-config-dir=\(dir)"])
        #expect(result.status == 1)
        #expect(result.output.contains("a.json: ports.http: expected a whole number, got a string"))
        #expect(result.output.contains("nothing was started"))
    }

    /// A fleet agent starts with etcd unreachable: it serves, and leaf requests say why none is signed.
    @Test func aFleetAgentWithoutEtcdServesAndSaysWhyItSignsNothing() throws {
        let dir = makeTemporaryDirectory("fleet-block")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Nothing listens on port 1: etcd is unreachable from the start.
        try #"{"fleet": {"etcd_endpoints": ["http://127.0.0.1:1"]}}"#.write(toFile: dir + "/a.json", atomically: true, encoding: .utf8)
        #expect(try runConnectd(["validate", dir]).status == 0)
        let agent = try AgentProcess(["-data-dir=\(dir)/data", "-config-dir=\(dir)"])
        defer { _ = agent.stop() }
        let leaf = try agent.get("/v1/agent/connect/ca/leaf/web")
        #expect(leaf.status == 503, "\(leaf.text)")
        #expect(leaf.text.contains("the fleet has no root yet"), "\(leaf.text)")
        #expect(try agent.get("/v1/agent/self").status == 200)
        try agent.waitForLog("fleet view: etcd unavailable")
        #expect(agent.stop() == 0)
    }

    @Test func fleetModeRefusesConfigFileIntentions() throws {
        let dir = makeTemporaryDirectory("fleet-intentions")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"fleet": {"etcd_endpoints": ["http://127.0.0.1:1"]}, "intentions": [{"source_name": "web", "destination_name": "db", "action": "deny"}]}"#
            .write(toFile: dir + "/a.json", atomically: true, encoding: .utf8)
        let result = try runConnectd(["validate", dir])
        #expect(result.status != 0)
        #expect(result.output.contains("intentions") && result.output.contains("shared through etcd"), "\(result.output)")
    }

    @Test func devAgentServesDemoServicesAndCleansUpOnSIGTERM() throws {
        let contrib = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("contrib/dev").path
        let agent = try AgentProcess(["-dev", "--config-dir", contrib])
        let started = try agent.waitForLog("agent started")
        let dataDir = try #require(started.range(of: #"data_dir=\S+"#, options: .regularExpression).map { String(started[$0].dropFirst("data_dir=".count)) })
        #expect(FileManager.default.fileExists(atPath: dataDir))

        let selfResponse = try agent.get("/v1/agent/self")
        #expect(selfResponse.status == 200)
        #expect(selfResponse.text.contains("\"Datacenter\": \"dc1\""))
        let services = try JSONParser.parse(try agent.get("/v1/agent/services").body)
        #expect(services["web-proxy"]?["Kind"] == .string("connect-proxy"))
        #expect(services["db-proxy"] != nil)
        #expect(services["metrics-1"]?["Connect"]?["Native"] == .bool(true))
        #expect(try agent.get("/v1/agent/services?token=s3cret").status == 200)

        #expect(agent.stop() == 0)
        #expect(agent.log.contains("agent stopped"))
        #expect(!agent.log.contains("s3cret"))
        #expect(agent.log.contains("token=<hidden>"))
        #expect(!FileManager.default.fileExists(atPath: dataDir))
    }

    @Test func stateSurvivesARestartAndSIGHUPReloads() throws {
        let dir = makeTemporaryDirectory("restart")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let configDir = dir + "/config"
        try FileManager.default.createDirectory(atPath: configDir, withIntermediateDirectories: true)
        try #"{"connect": {"proxy": {"allow_managed_api_registration": true}}, "service": {"name": "web", "port": 8080, "connect": {"proxy": {}}}}"#
            .write(toFile: configDir + "/web.json", atomically: true, encoding: .utf8)
        let arguments = ["-data-dir", dir + "/data", "-config-dir", configDir]

        let first = try AgentProcess(arguments)
        #expect(try first.put("/v1/agent/service/register", body: #"{"Name": "api", "Port": 9000, "Connect": {"Proxy": {}}}"#).status == 200)
        let before = try JSONParser.parse(try first.get("/v1/agent/services").body)
        let tokensBefore = try proxyTokens(dataDir: dir + "/data")
        #expect(tokensBefore.count == 2)
        #expect(first.stop() == 0)

        let second = try AgentProcess(arguments)
        let after = try JSONParser.parse(try second.get("/v1/agent/services").body)
        #expect(after.objectMembers?.map(\.0) == ["api", "api-proxy", "web", "web-proxy"])
        #expect(after["api-proxy"]?["Port"] == before["api-proxy"]?["Port"])
        #expect(after["web-proxy"]?["Port"] == before["web-proxy"]?["Port"])
        #expect(try proxyTokens(dataDir: dir + "/data") == tokensBefore)

        try #"{"service": {"name": "db", "port": 5432}}"#.write(toFile: configDir + "/db.json", atomically: true, encoding: .utf8)
        second.signal(SIGHUP)
        try second.waitForLog("configuration reloaded")
        #expect(try JSONParser.parse(try second.get("/v1/agent/services").body)["db"] != nil)

        try "{ broken".write(toFile: configDir + "/db.json", atomically: true, encoding: .utf8)
        let reload = try runConnectd(["reload", "-http-addr", "127.0.0.1:\(second.port)"])
        #expect(reload.status == 1)
        #expect(reload.output.contains("db.json: invalid JSON"))
        #expect(try JSONParser.parse(try second.get("/v1/agent/services").body)["db"] != nil)
        try FileManager.default.removeItem(atPath: configDir + "/db.json")
        let good = try runConnectd(["reload", "-http-addr", "127.0.0.1:\(second.port)"])
        #expect(good.status == 0, "\(good.output)")
        #expect(try JSONParser.parse(try second.get("/v1/agent/services").body)["db"] == nil)
        #expect(second.stop() == 0)
    }

    /// proxy ID → token, read from the durable records as an operator would find them.
    func proxyTokens(dataDir: String) throws -> [String: String] {
        var tokens: [String: String] = [:]
        let directory = dataDir + "/state/proxies"
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            let record = try JSONParser.parse(Array(FileManager.default.contents(atPath: directory + "/" + name) ?? Data()))
            if let id = record["Value"]?["ProxyServiceID"]?.stringValue, let token = record["Value"]?["ProxyToken"]?.stringValue {
                tokens[id] = token
            }
        }
        return tokens
    }

    @Test func sigtermReleasesParkedBlockingQueriesAtOnce() throws {
        let dir = makeTemporaryDirectory("release")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"service": {"name": "web", "port": 8080, "connect": {"proxy": {"command": ["/bin/true"]}}}}"#
            .write(toFile: dir + "/web.json", atomically: true, encoding: .utf8)
        let agent = try AgentProcess(["-data-dir", dir + "/data", "-config-dir", dir])
        let hash = try #require(try agent.get("/v1/agent/connect/proxy/web-proxy").header("X-Consul-Contenthash"))
        let port = agent.port
        let answer = LockedBox<SimpleHTTPResponse?>(nil)
        let parked = Thread {
            answer.set(try? SimpleHTTPClient.send(method: "GET", host: "127.0.0.1", port: port,
                                                  target: "/v1/agent/connect/proxy/web-proxy?hash=\(hash)&wait=10m", timeoutSeconds: 60))
        }
        parked.start()
        Thread.sleep(forTimeInterval: 0.5)
        let stopping = Date()
        #expect(agent.stop() == 0)
        #expect(Date().timeIntervalSince(stopping) < 5)
        let deadline = Date().addingTimeInterval(5)
        while answer.value == nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        #expect(answer.value?.status == 200)
        #expect(answer.value?.header("X-Consul-Contenthash") == hash)
    }
}

final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
    func set(_ value: Value) {
        lock.lock()
        stored = value
        lock.unlock()
    }
}
