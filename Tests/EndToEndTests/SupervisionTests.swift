import ConnectdCore
import Foundation
import Testing

/// connectd as a user runs it, with real managed proxies.
@Suite(.serialized) struct SupervisionTests {
    func writeConfig(_ dir: String, port: Int) throws {
        let script = dir + "/proxy.sh"
        try "#!/bin/sh\necho \"up $CONNECT_PROXY_ID\"\nexec sleep 1000\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        try """
        {"ports": {"http": \(port)}, "connect": {"proxy": {"allow_managed_root": true}, "proxy_defaults": {"daemon_command": ["\(script)"], "stop_grace": "2s"}},
         "services": [{"name": "web", "port": 8080, "connect": {"proxy": {}}}, {"name": "db", "port": 5432, "connect": {"proxy": {}}}]}
        """.write(toFile: dir + "/agent.json", atomically: true, encoding: .utf8)
    }

    func proxies(_ agent: AgentProcess) throws -> [String: JSONValue] {
        let list = try JSONParser.parse(try agent.get("/v1/agent/proxies").body)
        guard case .array(let entries) = list else { return [:] }
        var byID: [String: JSONValue] = [:]
        for entry in entries { if let id = entry["ID"]?.stringValue { byID[id] = entry } }
        return byID
    }

    func runningPIDs(_ agent: AgentProcess) throws -> [String: Int64] {
        try proxies(agent).compactMapValues { entry in
            guard entry["State"] == .string("running"), case .int(let pid)? = entry["Pid"] else { return nil }
            return pid
        }
    }

    func waitFor(_ seconds: Double = 15, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return try condition()
    }

    @Test func sigusr2LeavesProxiesForTheNextConnectdAndSIGTERMStopsThem() throws {
        let dir = makeTemporaryDirectory("usr2")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = freeLoopbackPort()
        try writeConfig(dir, port: port)
        let arguments = ["-data-dir", dir + "/data", "-config-file", dir + "/agent.json", "-http-port", "\(port)"]

        let first = try AgentProcess(arguments)
        #expect(try waitFor { try runningPIDs(first).count == 2 })
        let pids = try runningPIDs(first)
        first.signal(SIGUSR2)
        #expect(first.waitForExit() == 0)
        #expect(first.log.contains("leaving the managed proxies running"))
        for pid in pids.values { #expect(kill(pid_t(pid), 0) == 0) }

        let second = try AgentProcess(arguments)
        #expect(try waitFor { try runningPIDs(second).count == 2 })
        #expect(try runningPIDs(second) == pids)
        #expect(try proxies(second)["web-proxy"]?["Adopted"] == .bool(true))
        let status = try runConnectd(["status", "-http-addr", "127.0.0.1:\(port)"])
        #expect(status.status == 0)
        #expect(status.output.contains("web-proxy"))
        #expect(status.output.contains("running"))

        #expect(second.stop() == 0)
        for pid in pids.values {
            #expect(try waitFor(5) { kill(pid_t(pid), 0) != 0 })
        }
        #expect(second.log.contains("stopped every managed proxy"))
    }

    @Test func reloadRestartsAProxyOnlyWhenItsCommandChanges() throws {
        let dir = makeTemporaryDirectory("reload")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func write(config: String, command: String) throws {
            try """
            {"connect": {"proxy": {"allow_managed_root": true}},
             "service": {"name": "web", "port": 8080, "connect": {"proxy": {"command": [\(command)], "config": {\(config)}}}}}
            """.write(toFile: dir + "/web.json", atomically: true, encoding: .utf8)
        }
        try write(config: #""foo": 1"#, command: #""/bin/sleep", "1000""#)
        let agent = try AgentProcess(["-data-dir", dir + "/data", "-config-dir", dir])
        #expect(try waitFor { try runningPIDs(agent)["web-proxy"] != nil })
        let pid = try #require(try runningPIDs(agent)["web-proxy"])

        try write(config: #""foo": 2, "bind_port": 21999"#, command: #""/bin/sleep", "1000""#)
        #expect(try runConnectd(["reload", "-http-addr", "127.0.0.1:\(agent.port)"]).status == 0)
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try runningPIDs(agent)["web-proxy"] == pid)

        // A broken config: `connectd reload` exits 1 with the problem and the proxy keeps running.
        try "{ broken".write(toFile: dir + "/web.json", atomically: true, encoding: .utf8)
        let refused = try runConnectd(["reload", "-http-addr", "127.0.0.1:\(agent.port)"])
        #expect(refused.status == 1)
        #expect(refused.output.contains("web.json: invalid JSON"))
        #expect(try runningPIDs(agent)["web-proxy"] == pid)

        try write(config: #""foo": 2"#, command: #""/bin/sleep", "999""#)
        #expect(try runConnectd(["reload", "-http-addr", "127.0.0.1:\(agent.port)"]).status == 0)
        #expect(try waitFor { (try runningPIDs(agent)["web-proxy"] ?? pid) != pid })
        #expect(kill(pid_t(pid), 0) != 0)
        #expect(agent.stop() == 0)
    }

    @Test func rootWithoutAllowManagedRootRunsNoProxy() throws {
        let dir = makeTemporaryDirectory("root")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"service": {"name": "web", "port": 8080, "connect": {"proxy": {"command": ["/bin/sleep", "1000"]}}}}"#
            .write(toFile: dir + "/web.json", atomically: true, encoding: .utf8)
        let agent = try AgentProcess(["-data-dir", dir + "/data", "-config-dir", dir])
        #expect(try waitFor { try proxies(agent)["web-proxy"]?["State"] == .string("refused-root") })
        #expect(agent.log.contains("running as root: managed proxies will not be started"))
        #expect(agent.stop() == 0)
    }
}
