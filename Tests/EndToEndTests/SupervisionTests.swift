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

    /// PIDs of live processes marked with `dataDir` (the spawn marker every proxy carries).
    func markedPIDs(_ dataDir: String) -> Set<Int64> {
        let canonical = URL(fileURLWithPath: dataDir).resolvingSymlinksInPath().standardizedFileURL.path
        return Set(((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int64.init).filter { pid in
            guard let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
            return environ.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == "CONNECTD_DATA_DIR=" + canonical }
        })
    }

    /// connectd killed (-9) at 40 random moments of its start, with 20 proxies:
    /// the next connectd ends up with exactly one process per proxy, all tracked, and a stop
    /// leaves none. (Before spawn markers, 40 such kills left 27 untracked duplicates.)
    @Test func sigkillDuringStartLeavesNoUntrackedProxies() throws {
        let dir = makeTemporaryDirectory("sigkill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = dir + "/proxy.sh"
        try "#!/bin/sh\nexec sleep 1000\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let services = (1...20).map { #"{"name": "s\#($0)", "port": \#(9000 + $0), "connect": {"proxy": {}}}"# }
        try """
        {"connect": {"proxy": {"allow_managed_root": true}, "proxy_defaults": {"daemon_command": ["\(script)"], "stop_grace": "2s"}},
         "services": [\(services.joined(separator: ", "))]}
        """.write(toFile: dir + "/agent.json", atomically: true, encoding: .utf8)
        let arguments = ["agent", "-http-port", "0", "-data-dir", dir + "/data", "-config-file", dir + "/agent.json"]
        var generator = SystemRandomNumberGenerator()
        // 40 kills at random moments of start-up; after every 10th, a full start must find
        // exactly one tracked process per proxy (and is itself killed, running, to go on).
        for round in 1...40 {
            let agent = Process()
            agent.executableURL = URL(fileURLWithPath: connectdBinary())
            agent.arguments = arguments
            agent.standardOutput = FileHandle.nullDevice
            agent.standardError = FileHandle.nullDevice
            try agent.run()
            Thread.sleep(forTimeInterval: Double.random(in: 0.02...0.6, using: &generator))
            kill(agent.processIdentifier, SIGKILL)
            agent.waitUntilExit()
            guard round % 10 == 0 else { continue }
            let full = try AgentProcess(Array(arguments.dropFirst(3)))
            #expect(try waitFor(30) { try runningPIDs(full).count == 20 }, "round \(round)")
            let tracked = Set(try runningPIDs(full).values)
            #expect(try waitFor(10) { markedPIDs(dir + "/data") == tracked },
                    "round \(round): untracked \(markedPIDs(dir + "/data").subtracting(tracked))")
            full.signal(SIGKILL)
            _ = full.waitForExit()
        }
        let last = try AgentProcess(Array(arguments.dropFirst(3)))
        #expect(try waitFor(30) { try runningPIDs(last).count == 20 })
        let tracked = Set(try runningPIDs(last).values)
        #expect(try waitFor(10) { markedPIDs(dir + "/data") == tracked }, "untracked: \(markedPIDs(dir + "/data").subtracting(tracked))")
        #expect(last.stop() == 0)
        #expect(try waitFor(5) { markedPIDs(dir + "/data").isEmpty })
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
