import ConnectdCore
import Foundation
import Testing

/// Two managed `connectd proxy` processes in front of two `connectd demo-http` services: web's
/// upstream listener reaches db over mutual TLS. Real binaries, real certificates, loopback only.
@Suite(.serialized) struct ConnectProxyTests {
    final class Demo: @unchecked Sendable {
        let dir: String
        var agent: AgentProcess
        let agentArguments: [String]
        let services: [Process]
        let upstreamPort: Int
        let dbProxyPort: Int
        /// The config text, with `UPSTREAM` where web's upstream port goes.
        let configTemplate: String

        /// db's port (its `connectd demo-http`).
        let dbPort: Int

        /// - Parameters:
        ///   - dbProxyConfig: more members of db's proxy `config` (JSON text, e.g. `"k": 1`).
        ///   - dbService: more members of db's service definition; `DBPORT` stands for db's port.
        init(label: String, dbProxyConfig: String = "", dbService: String = "") throws {
            dir = makeTemporaryDirectory(label)
            let (webPort, dbPort, upstreamPort, webProxyPort, dbProxyPort) = (freeLoopbackPort(), freeLoopbackPort(), freeLoopbackPort(), freeLoopbackPort(), freeLoopbackPort())
            self.upstreamPort = upstreamPort
            self.dbProxyPort = dbProxyPort
            self.dbPort = dbPort
            services = [try startDemoHTTP("web", port: webPort), try startDemoHTTP("db", port: dbPort)]
            let template = """
            {"bind_addr": "127.0.0.1",
             "connect": {"proxy": {"allow_managed_root": true}, "proxy_defaults": {"stop_grace": "2s"},
                         "ca_config": {"root_change_jitter": "0s"}},
             "services": [
               {"name": "web", "port": \(webPort), "connect": {"proxy": {"config": {"bind_port": \(webProxyPort)},
                 "upstreams": [{"destination_name": "db", "local_bind_port": UPSTREAM}]}}},
               {"name": "db", "port": \(dbPort)\(dbService.isEmpty ? "" : ", " + dbService.replacingOccurrences(of: "DBPORT", with: String(dbPort))),
                "connect": {"proxy": {"config": {"bind_port": \(dbProxyPort)\(dbProxyConfig.isEmpty ? "" : ", " + dbProxyConfig)}}}}]}
            """
            configTemplate = template
            try template.replacingOccurrences(of: "UPSTREAM", with: String(upstreamPort))
                .write(toFile: dir + "/demo.json", atomically: true, encoding: .utf8)
            // A fixed HTTP port: a restarted agent must give its proxies the same CONSUL_HTTP_ADDR to adopt them.
            agentArguments = ["-data-dir", dir + "/data", "-config-file", dir + "/demo.json", "-log-level", "debug",
                              "-http-port", String(freeLoopbackPort())]
            agent = try AgentProcess(agentArguments)
        }

        /// The last lines of each managed proxy's log.
        func proxyLogs(lines: Int = 12) -> String {
            let directory = dir + "/data/proxy/logs"
            return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted().map { name in
                let text = (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? ""
                return "== \(name)\n" + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
            }.joined(separator: "\n")
        }

        /// Seconds until `condition` holds, polling every 20 ms for at most `seconds`; nil if never.
        func wait(seconds: Double, _ condition: () -> Bool) -> Double? {
            let start = Date()
            while Date().timeIntervalSince(start) < seconds {
                if condition() { return Date().timeIntervalSince(start) }
                Thread.sleep(forTimeInterval: 0.02)
            }
            return nil
        }

        /// One HTTP GET through web's upstream listener; the body, or nil when the connection failed.
        func throughUpstream(port: Int? = nil) -> String? {
            guard let response = try? SimpleHTTPClient.send(method: "GET", host: "127.0.0.1", port: port ?? upstreamPort, target: "/",
                                                            timeoutSeconds: 5), response.status == 200 else { return nil }
            return response.text
        }

        /// Waits (bounded) until a request through the upstream succeeds or fails, as wanted.
        func waitUntil(reachable: Bool, seconds: Double = 30) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if (throughUpstream() == "hello from db\n") == reachable { return true }
                Thread.sleep(forTimeInterval: 0.2)
            }
            return false
        }

        func post(_ target: String, _ body: String) throws -> SimpleHTTPResponse {
            try SimpleHTTPClient.send(method: "POST", host: "127.0.0.1", port: agent.port, target: target, body: Array(body.utf8))
        }

        /// Stops the agent (it stops its proxies) and the services; `keepingFiles` leaves the logs.
        func stop(keepingFiles: Bool = false) {
            #expect(agent.stop() == 0)
            for process in services { process.terminate(); process.waitUntilExit() }
            if !keepingFiles { try? FileManager.default.removeItem(atPath: dir) }
        }
    }

    @Test func trafficFlowsAndIntentionsDecide() throws {
        let demo = try Demo(label: "mtls")
        defer { demo.stop() }
        #expect(demo.waitUntil(reachable: true), "web's upstream never reached db; log:\n\(demo.agent.log)")
        // Connections from web's one certificate: db's proxy answers them from its authorize cache.
        for _ in 0..<20 { #expect(demo.throughUpstream() == "hello from db\n") }
        let created = try demo.post("/v1/connect/intentions", #"{"SourceName":"web","DestinationName":"db","Action":"deny"}"#)
        let denied = Date()
        let id = try #require(try JSONParser.parse(created.body)["ID"]?.stringValue)
        let refused = demo.wait(seconds: 5) { demo.throughUpstream() == nil }
        #expect(refused.map { $0 <= 1 } == true, "a deny intention blocks new connections within 1 s, even with the cache: \(refused.map { String($0) } ?? "never")")
        #expect(Date().timeIntervalSince(denied) < 3)
        for _ in 0..<5 { #expect(demo.throughUpstream() == nil, "and keeps blocking them") }
        let deleted = try SimpleHTTPClient.send(method: "DELETE", host: "127.0.0.1", port: demo.agent.port, target: "/v1/connect/intentions/\(id)")
        #expect(deleted.status == 200)
        let restored = demo.wait(seconds: 5) { demo.throughUpstream() == "hello from db\n" }
        #expect(restored.map { $0 <= 1 } == true, "deleting the intention restores access within 1 s")
        let logs = try String(contentsOfFile: demo.dir + "/data/proxy/logs/db-proxy-stderr.log", encoding: .utf8)
        #expect(logs.contains("inbound connection denied") && logs.contains("Matched intention: DENY default/web => default/db"))
    }

    /// A sidecar's footprint: one event-loop thread does the proxy's I/O and runs its tasks (no
    /// cooperative pool, no libdispatch threads), and SIGTERM still stops it cleanly.
    @Test func aProxyRunsOnItsOneEventLoopThread() throws {
        let demo = try Demo(label: "threads")
        #expect(demo.waitUntil(reachable: true), "web's upstream never reached db; log:\n\(demo.agent.log)")
        for _ in 0..<50 { #expect(demo.throughUpstream() == "hello from db\n") }
        let status = try JSONParser.parse(try demo.agent.get("/v1/agent/proxies").body)
        guard case .array(let proxies) = status else { Issue.record("no proxies in \(status)"); return }
        for proxy in proxies {
            guard case .int(let pid)? = proxy["Pid"] else { Issue.record("no Pid in \(proxy)"); continue }
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            let names = tasks.map { (try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8)) ?? "?" }
            // The main thread and the loop; at start a libdispatch worker runs the main queue for a few seconds.
            #expect(tasks.count <= 3, "\(proxy["ID"] ?? .null) runs \(tasks.count) threads: \(names)")
            #expect(names.filter { $0.hasPrefix("NIO-") }.count == 1, "one event loop: \(names)")
        }
        demo.stop(keepingFiles: true)
        defer { try? FileManager.default.removeItem(atPath: demo.dir) }
        let logs = try String(contentsOfFile: demo.dir + "/data/proxy/logs/db-proxy-stderr.log", encoding: .utf8)
        #expect(logs.contains("signal received") && logs.contains("stopped"), "SIGTERM from the agent stops the proxy: \(logs.suffix(600))")
    }

    @Test func thePublicListenerRequiresALeafFromThisCA() throws {
        let demo = try Demo(label: "s-client")
        defer { demo.stop() }
        #expect(demo.waitUntil(reachable: true))
        let dir = demo.dir
        let leaf = try JSONParser.parse(try demo.agent.get("/v1/agent/connect/ca/leaf/web").body)
        try (leaf["CertPEM"]?.stringValue ?? "").write(toFile: dir + "/leaf.pem", atomically: true, encoding: .utf8)
        try (leaf["PrivateKeyPEM"]?.stringValue ?? "").write(toFile: dir + "/key.pem", atomically: true, encoding: .utf8)
        let roots = try JSONParser.parse(try demo.agent.get("/v1/agent/connect/ca/roots").body)
        guard case .array(let list)? = roots["Roots"] else { Issue.record("no roots"); return }
        try list.compactMap { $0["RootCert"]?.stringValue }.joined().write(toFile: dir + "/roots.pem", atomically: true, encoding: .utf8)
        _ = try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "foreign-key.pem",
                         "-out", "foreign.pem", "-days", "1", "-subj", "/CN=web",
                         "-addext", "subjectAltName=URI:spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/web"], in: dir)

        func sClient(_ extra: [String]) throws -> String {
            let script = "(printf 'GET / HTTP/1.0\\r\\n\\r\\n'; sleep 1) | timeout 10 openssl s_client -connect 127.0.0.1:\(demo.dbProxyPort) -CAfile roots.pem -quiet " +
                extra.joined(separator: " ") + " 2>&1"
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", script]
            process.currentDirectoryURL = URL(fileURLWithPath: dir)
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
        let bare = try sClient([])
        #expect(!bare.contains("hello from db") && bare.contains("alert"), "\(bare)")
        let foreign = try sClient(["-cert", "foreign.pem", "-key", "foreign-key.pem"])
        #expect(!foreign.contains("hello from db") && foreign.contains("unknown ca"), "\(foreign)")
        let valid = try sClient(["-cert", "leaf.pem", "-key", "key.pem"])
        #expect(valid.contains("hello from db"), "\(valid)")
        _ = try demo.agent.waitForLog("/v1/agent/connect/authorize")
    }

    @Test func rotationLosesNoRequestAndAKilledProxyComesBack() throws {
        let demo = try Demo(label: "rotate")
        defer { demo.stop() }
        #expect(demo.waitUntil(reachable: true), "log:\n\(demo.agent.log.suffix(8000))")
        let failures = Atomic(0)
        let successes = Atomic(0)
        let running = Atomic(true)
        let loop = Thread {
            while running.value {
                if demo.throughUpstream() == "hello from db\n" { successes.add() } else { failures.add() }
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        loop.start()
        Thread.sleep(forTimeInterval: 0.5)
        let rotate = try runConnectd(["ca", "rotate", "-http-addr", "127.0.0.1:\(demo.agent.port)"])
        #expect(rotate.status == 0, "\(rotate.output)")
        // Both proxies pick up the new roots and leaves (jitter 0) while the loop runs.
        Thread.sleep(forTimeInterval: 4)
        running.set(false)
        Thread.sleep(forTimeInterval: 0.3)
        #expect(failures.value == 0, "\(failures.value) failed of \(failures.value + successes.value)")
        #expect(successes.value > 20)
        let logs = try String(contentsOfFile: demo.dir + "/data/proxy/logs/web-proxy-stderr.log", encoding: .utf8)
        #expect(logs.components(separatedBy: "TLS material updated").count >= 3, "the proxy took the new material")

        let status = try JSONParser.parse(try demo.agent.get("/v1/agent/proxies").body)
        guard case .array(let proxies) = status, let db = proxies.first(where: { $0["ID"] == .string("db-proxy") }),
              case .int(let pid)? = db["Pid"] else { Issue.record("no db-proxy Pid in \(status)"); return }
        kill(pid_t(pid), SIGKILL)
        #expect(demo.waitUntil(reachable: true), "traffic resumes after the supervisor restarts the proxy")
        let after = try JSONParser.parse(try demo.agent.get("/v1/agent/proxies").body)
        if case .array(let list) = after, let restarted = list.first(where: { $0["ID"] == .string("db-proxy") }) {
            #expect(restarted["Pid"] != .int(pid))
        }
    }
}

extension ConnectProxyTests {
    @Test func aConfigChangeRebindsTheUpstreamListenerWithoutARestart() throws {
        let demo = try Demo(label: "rebind")
        defer { demo.stop() }
        #expect(demo.waitUntil(reachable: true))
        let pid = try JSONParser.parse(try demo.agent.get("/v1/agent/proxies").body)
        let newPort = freeLoopbackPort()
        try demo.configTemplate.replacingOccurrences(of: "UPSTREAM", with: String(newPort))
            .write(toFile: demo.dir + "/demo.json", atomically: true, encoding: .utf8)
        let reload = try runConnectd(["reload", "-http-addr", "127.0.0.1:\(demo.agent.port)"])
        #expect(reload.status == 0, "\(reload.output)")
        let deadline = Date().addingTimeInterval(20)
        var body: String?
        while Date() < deadline && body == nil {
            body = demo.throughUpstream(port: newPort)
            if body == nil { Thread.sleep(forTimeInterval: 0.2) }
        }
        #expect(body == "hello from db\n", "the new upstream port answers")
        #expect(demo.throughUpstream() == nil, "the old one is closed")
        let after = try JSONParser.parse(try demo.agent.get("/v1/agent/proxies").body)
        func pids(_ value: JSONValue) -> [JSONValue] {
            if case .array(let list) = value { return list.compactMap { $0["Pid"] } }
            return []
        }
        #expect(pids(after) == pids(pid), "config-only changes reach the proxies without restarting them")
    }

    @Test func anUnmanagedProxyReachesAnUpstream() throws {
        let demo = try Demo(label: "unmanaged")
        defer { demo.stop() }
        #expect(demo.waitUntil(reachable: true))
        let port = freeLoopbackPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: connectdBinary())
        process.arguments = ["proxy", "-service", "web", "-upstream", "db:\(port)", "-http-addr", "127.0.0.1:\(demo.agent.port)"]
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = pipe
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        let deadline = Date().addingTimeInterval(20)
        var body: String?
        while Date() < deadline && body == nil {
            body = (try? SimpleHTTPClient.send(method: "GET", host: "127.0.0.1", port: port, target: "/", timeoutSeconds: 5))?.text
            if body == nil { Thread.sleep(forTimeInterval: 0.2) }
        }
        #expect(body == "hello from db\n")
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "SIGTERM stops it cleanly")
        let bad = try runConnectd(["proxy", "-service", "web", "-upstream", "db"])
        #expect(bad.status != 0 && bad.output.contains("-upstream: expected NAME:PORT"))
        let none = try runConnectd(["proxy"])
        #expect(none.status != 0 && none.output.contains("no proxy identity"))
    }

    @Test func proxiesKeepServingWhileTheAgentIsDown() throws {
        let demo = try Demo(label: "agent-down")
        defer { demo.stop() }
        #expect(demo.waitUntil(reachable: true))
        // SIGUSR2: the agent exits for an upgrade and leaves the proxies running.
        demo.agent.signal(SIGUSR2)
        let status = demo.agent.waitForExit()
        #expect(status == 0, "reason \(demo.agent.process.terminationReason.rawValue); \(demo.agent.log.suffix(6000))")
        for _ in 0..<5 {
            #expect(demo.throughUpstream() == "hello from db\n", "served from the last discovery and authorize answers: \(demo.proxyLogs())")
        }
        // The next agent adopts the same proxies and traffic keeps flowing.
        demo.agent = try AgentProcess(demo.agentArguments)
        _ = try demo.agent.waitForLog("adopted running proxy")
        #expect(demo.waitUntil(reachable: true))
    }
}

/// A tiny thread-safe counter/flag for the request loop.
final class Atomic<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func set(_ value: Value) { lock.withLock { stored = value } }
}

extension Atomic where Value == Int {
    func add() { lock.withLock { stored += 1 } }
}
