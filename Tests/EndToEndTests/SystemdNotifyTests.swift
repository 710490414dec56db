import ConnectdCore
import Foundation
import Testing

/// systemd's notify protocol, with a fake NOTIFY_SOCKET listener (systemd is not PID 1 here).
@Suite(.serialized) struct SystemdNotifyTests {
    @Test func readyReloadStatusWatchdogAndStopping() throws {
        let dir = makeTemporaryDirectory("notify")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = dir + "/proxy.sh"
        try "#!/bin/sh\ntr '\\\\0' '\\\\n' < /proc/$$/environ > \(dir)/env-$$\nexec sleep 1000\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        try """
        {"connect": {"proxy": {"allow_managed_root": true}, "proxy_defaults": {"daemon_command": ["\(script)"]}},
         "service": {"name": "web", "port": 8080, "connect": {"proxy": {}}}}
        """.write(toFile: dir + "/web.json", atomically: true, encoding: .utf8)
        let listener = try NotifyListener()
        let agent = try AgentProcess(["-data-dir", dir + "/data", "-config-dir", dir],
                                     environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "400000"])

        let ready = try #require(listener.waitFor("READY=1"))
        #expect(ready.1.contains("STATUS=serving on 127.0.0.1:"))
        #expect(try agent.get("/v1/agent/self").status == 200)
        let status = try #require(listener.waitFor("STATUS=1 proxy: 1 running"))
        _ = status

        // The watchdog pings at about half of WATCHDOG_USEC.
        Thread.sleep(forTimeInterval: 1.2)
        let pings = listener.messages.filter { $0.1 == "WATCHDOG=1" }.map(\.0)
        #expect(pings.count >= 3, "\(pings.count) pings")
        if pings.count >= 3 {
            let gaps = zip(pings.dropFirst(), pings).map { $0.timeIntervalSince($1) }
            #expect(gaps.allSatisfy { $0 > 0.1 && $0 < 0.4 }, "\(gaps)")
        }

        // No proxy sees connectd's NOTIFY_SOCKET or WATCHDOG_*.
        let envFile = try #require(try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasPrefix("env-") })
        let environment = try String(contentsOfFile: dir + "/" + envFile, encoding: .utf8)
        #expect(environment.contains("CONNECT_PROXY_ID=web-proxy"))
        #expect(!environment.contains("NOTIFY_SOCKET"))
        #expect(!environment.contains("WATCHDOG_"))
        #expect(!environment.contains("LISTEN_"))

        // SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1.
        let beforeReload = Date()
        agent.signal(SIGHUP)
        let reloading = try #require(listener.waitFor("RELOADING=1", after: beforeReload))
        #expect(reloading.1.contains("MONOTONIC_USEC="))
        let reloaded = try #require(listener.waitFor("READY=1", after: reloading.0))
        #expect(reloaded.1.contains("configuration reloaded"))

        // A crashing proxy changes STATUS=.
        let pid = try #require(try JSONParser.parse(try agent.get("/v1/agent/proxies").body)[0]?["Pid"]).intValue
        let beforeKill = Date()
        kill(pid_t(pid), SIGKILL)
        #expect(listener.waitFor("STATUS=", after: beforeKill) != nil)

        // SIGTERM: STOPPING=1.
        let beforeStop = Date()
        #expect(agent.stop() == 0)
        #expect(listener.waitFor("STOPPING=1", after: beforeStop, seconds: 5) != nil)
        #expect(listener.waitFor("EXTEND_TIMEOUT_USEC=", after: beforeStop, seconds: 5) != nil)
    }

    @Test func noWatchdogPingWhileAnEventLoopIsStalled() throws {
        let dir = makeTemporaryDirectory("stall")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let listener = try NotifyListener()
        let agent = try AgentProcess(["-data-dir", dir + "/data"],
                                     environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "400000", "CONNECTD_TEST_HOOKS": "1"])
        #expect(listener.waitFor("READY=1") != nil)
        Thread.sleep(forTimeInterval: 0.6)
        agent.signal(SIGUSR1)
        try agent.waitForLog("test hook: stalling")
        let stalledAt = Date()
        Thread.sleep(forTimeInterval: 1.8)
        let during = listener.messages.filter { $0.1 == "WATCHDOG=1" && $0.0 > stalledAt.addingTimeInterval(0.3) && $0.0 < stalledAt.addingTimeInterval(1.7) }
        #expect(during.isEmpty, "\(during.count) pings while the loop was stalled")
        Thread.sleep(forTimeInterval: 1.2)
        let after = listener.messages.filter { $0.1 == "WATCHDOG=1" && $0.0 > stalledAt.addingTimeInterval(2.2) }
        #expect(!after.isEmpty, "pings resume after the stall")
        #expect(agent.log.contains("watchdog: the HTTP event loop or the supervisor did not answer"))
        #expect(agent.stop() == 0)
    }

    @Test func socketActivationServesOnThePassedSocket() throws {
        let dir = makeTemporaryDirectory("activate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = freeLoopbackPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-socket-activate")
        process.arguments = ["-l", "127.0.0.1:\(port)", "--fdname=http", connectdBinary(), "agent", "-data-dir", dir + "/data"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        var response: SimpleHTTPResponse?
        let deadline = Date().addingTimeInterval(15)
        while response == nil && Date() < deadline {
            response = try? SimpleHTTPClient.send(method: "GET", host: "127.0.0.1", port: port, target: "/v1/agent/self")
            if response == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        #expect(response?.status == 200)
        #expect(response?.header("Date") != nil)
        #expect(response?.text.contains("\"Datacenter\":\"dc1\"") == true)
    }

    @Test func anInvalidConfigurationIsReportedWithERRNO() throws {
        let dir = makeTemporaryDirectory("notify-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"log_level": "loud"}"#.write(toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
        let listener = try NotifyListener()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: connectdBinary())
        process.arguments = ["agent", "-data-dir", dir + "/data", "-config-dir", dir]
        process.environment = ProcessInfo.processInfo.environment.merging(["NOTIFY_SOCKET": listener.path]) { $1 }
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        let message = try #require(listener.waitFor("ERRNO=22", seconds: 5))
        #expect(message.1.contains("STATUS=invalid configuration:"))
        #expect(message.1.contains("log_level"))
        #expect(!listener.messages.contains { $0.1.contains("READY=1") })
    }

    /// READY=1 waits until no proxy is `starting`, and STATUS= says so: at READY every proxy the
    /// agent reports is running.
    @Test func readyMeansEveryProxyHasStarted() throws {
        let dir = makeTemporaryDirectory("notify-ready")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let services = (1...6).map { #"{"name": "s\#($0)", "port": \#(8100 + $0), "connect": {"proxy": {"command": ["/bin/sleep", "1000"]}}}"# }
        try #"{"connect": {"proxy": {"allow_managed_root": true}}, "services": [\#(services.joined(separator: ","))]}"#
            .write(toFile: dir + "/s.json", atomically: true, encoding: .utf8)
        let listener = try NotifyListener()
        let agent = try AgentProcess(["-data-dir", dir + "/data", "-config-dir", dir], environment: ["NOTIFY_SOCKET": listener.path])
        let ready = try #require(listener.waitFor("READY=1", seconds: 30))
        #expect(ready.1.contains("every proxy started: 6 proxies: 6 running"), "\(ready.1)")
        let proxies = try JSONParser.parse(try agent.get("/v1/agent/proxies").body)
        guard case .array(let entries) = proxies else { Issue.record("no proxy list"); return }
        #expect(entries.count == 6)
        #expect(entries.allSatisfy { $0["State"] == .string("running") }, "\(proxies)")
        #expect(agent.stop() == 0)
    }

    /// A notify socket nobody drains never holds up the agent: it serves, reloads and stops at
    /// once (with a blocking sd_notify a stop waited 10-120 s).
    @Test func anUndrainedNotifySocketNeverBlocks() throws {
        let dir = makeTemporaryDirectory("notify-stuck")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A proxy that exits at once keeps STATUS= changing with every restart.
        try #"{"connect": {"proxy": {"allow_managed_root": true}}, "service": {"name": "web", "port": 8080, "connect": {"proxy": {"command": ["/bin/false"], "restart": {"immediate": 1000}}}}}"#
            .write(toFile: dir + "/web.json", atomically: true, encoding: .utf8)
        let listener = try NotifyListener(draining: false)
        let agent = try AgentProcess(["-data-dir", dir + "/data", "-config-dir", dir],
                                     environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "200000"])
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try agent.get("/v1/agent/self").status == 200)
        let reload = try SimpleHTTPClient.send(method: "PUT", host: "127.0.0.1", port: agent.port, target: "/v1/agent/reload", timeoutSeconds: 10)
        #expect(reload.status == 200)
        let stopAsked = Date()
        let status = agent.stop(seconds: 15)
        #expect(status == 0)
        // Generous: the exit gives queued messages at most 1 s; a blocked sender never returned.
        #expect(Date().timeIntervalSince(stopAsked) < 8, "stop took \(Date().timeIntervalSince(stopAsked)) s")
    }
}

extension JSONValue {
    subscript(index: Int) -> JSONValue? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    var intValue: Int64 {
        if case .int(let value) = self { return value }
        return 0
    }
}
