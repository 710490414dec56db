import ConnectdCore
import Foundation
import Testing

/// A local client opening far more HTTP connections than it may, against the binary running with
/// a 1,024-descriptor limit: the agent keeps serving others, keeps supervising, and does not spin.
@Suite(.serialized) struct ConnectionFloodTests {
    /// An agent with one managed proxy (a shell that sleeps) whose descriptor limit is then set
    /// to 1,024 with prlimit, as a default systemd unit would have it.
    func startAgent(_ dir: String, limits: String) throws -> AgentProcess {
        let script = dir + "/proxy.sh"
        try "#!/bin/sh\nexec sleep 1000\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        try """
        {"connect": {"proxy": {"allow_managed_root": true}, "proxy_defaults": {"daemon_command": ["\(script)"], "stop_grace": "1s"}},
         "limits": {\(limits)},
         "services": [{"name": "web", "port": 8080, "connect": {"proxy": {}}}]}
        """.write(toFile: dir + "/agent.json", atomically: true, encoding: .utf8)
        let agent = try AgentProcess(["-data-dir", dir + "/data", "-config-dir", dir])
        let pid = agent.process.processIdentifier
        let limited = try runProcess("/usr/bin/prlimit", ["--pid", "\(pid)", "--nofile=1024:1024"])
        #expect(limited.status == 0, "\(limited.output)")
        return agent
    }

    func proxyPID(_ agent: AgentProcess, source: String) throws -> Int64? {
        let response = try SimpleHTTPClient.send(method: "GET", host: "127.0.0.1", port: agent.port, target: "/v1/agent/proxies",
                                                 timeoutSeconds: 5, source: source)
        guard case .array(let entries) = try JSONParser.parse(response.body),
              let entry = entries.first, entry["State"] == .string("running"), case .int(let pid)? = entry["Pid"] else { return nil }
        return pid
    }

    func waitFor(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return try condition()
    }

    /// CPU seconds (user + system) the process has used so far.
    func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
        let ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Opens `count` connections from 127.0.0.1 as fast as it can and keeps those the server keeps.
    func flood(_ port: Int, count: Int) -> [Int32] {
        (0..<count).compactMap { _ in try? SimpleHTTPClient.connect(host: "127.0.0.1", port: port, timeoutSeconds: 5) }
    }

    /// How many of `fds` the server has closed.
    func closedByServer(_ fds: [Int32]) -> Int {
        fds.filter { fd in
            var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard Glibc.poll(&poll, 1, 0) == 1 else { return false }
            var byte: UInt8 = 0
            return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) == 0
        }.count
    }

    @Test func oneClientOverItsCapCannotStarveTheAgent() throws {
        let dir = makeTemporaryDirectory("flood")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let agent = try startAgent(dir, limits: "")
        defer { _ = agent.stop() }
        var firstPID: Int64?
        #expect(waitFor(15) { firstPID = try? proxyPID(agent, source: "127.0.0.2"); return firstPID != nil })
        let cpuBefore = cpuSeconds(agent.process.processIdentifier)
        let started = Date()
        let fds = flood(agent.port, count: 1224)
        defer { fds.forEach { close($0) } }
        Thread.sleep(forTimeInterval: 0.5)
        // The server closed every connection over the default cap of 200 at once.
        let closed = closedByServer(fds)
        #expect(fds.count == 1224)
        #expect(closed == fds.count - 200, "\(closed) of \(fds.count) closed; expected all but 200")
        // Another client is answered promptly throughout.
        var slowest = 0.0
        for _ in 0..<5 {
            let asked = Date()
            let response = try SimpleHTTPClient.send(method: "GET", host: "127.0.0.1", port: agent.port, target: "/v1/agent/self",
                                                     timeoutSeconds: 5, source: "127.0.0.2")
            #expect(response.status == 200)
            slowest = max(slowest, Date().timeIntervalSince(asked))
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(slowest < 0.1, "another client waited \(slowest) s")
        // A proxy that dies meanwhile is restarted at once: descriptors were kept for it.
        if let pid = firstPID { kill(Int32(pid), SIGKILL) }
        var restarted: Int64?
        #expect(waitFor(5) { restarted = try? proxyPID(agent, source: "127.0.0.2"); return restarted != nil && restarted != firstPID },
                "the killed proxy was not restarted; log:\n\(agent.log.suffix(2000))")
        #expect(!agent.log.contains("Too many open files"), "\(agent.log.suffix(2000))")
        Thread.sleep(forTimeInterval: max(0, 3 - Date().timeIntervalSince(started)))
        let share = (cpuSeconds(agent.process.processIdentifier) - cpuBefore) / Date().timeIntervalSince(started)
        #expect(share < 0.2, "connectd used \(Int(share * 100)) % of a core during the flood")
        #expect(agent.log.contains("limits.http_max_conns_per_client"), "the refusals are logged")
    }

    /// With the per-client cap off, the total cap (the descriptor limit minus a reserve) holds:
    /// the rest are closed, the supervisor still restarts a proxy, and when the flood ends the
    /// agent serves again.
    @Test func theTotalCapKeepsDescriptorsForTheSupervisor() throws {
        let dir = makeTemporaryDirectory("flood-total")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let agent = try startAgent(dir, limits: #""http_max_conns_per_client": 0"#)
        defer { _ = agent.stop() }
        var firstPID: Int64?
        #expect(waitFor(15) { firstPID = try? proxyPID(agent, source: "127.0.0.2"); return firstPID != nil })
        var fds = flood(agent.port, count: 1224)
        Thread.sleep(forTimeInterval: 0.5)
        let kept = fds.count - closedByServer(fds)
        // 1,024 descriptors less a reserve of 256.
        #expect(kept == 768, "\(kept) connections kept")
        // With the flood held at the cap, the agent idles instead of spinning on accept, and a
        // proxy that dies meanwhile is restarted: descriptors were kept for it.
        let cpuBefore = cpuSeconds(agent.process.processIdentifier)
        let started = Date()
        if let pid = firstPID { kill(Int32(pid), SIGKILL) }
        // The HTTP API is full for everyone now, so the restart is read from the log.
        #expect(waitFor(5) { agent.log.components(separatedBy: "started managed proxy").count == 3 },
                "the killed proxy was not restarted; log:\n\(agent.log.suffix(2000))")
        Thread.sleep(forTimeInterval: max(0, 2.5 - Date().timeIntervalSince(started)))
        let share = (cpuSeconds(agent.process.processIdentifier) - cpuBefore) / Date().timeIntervalSince(started)
        #expect(share < 0.2, "connectd used \(Int(share * 100)) % of a core while the flood was held")
        #expect(!agent.log.contains("Too many open files"), "\(agent.log.suffix(2000))")
        // When the flood ends, the flooding address is served again.
        fds.forEach { close($0) }
        fds = []
        var restarted: Int64?
        #expect(waitFor(5) { restarted = try? proxyPID(agent, source: "127.0.0.1"); return restarted != nil },
                "the flooding address is not served again")
        #expect(restarted != firstPID)
        #expect(agent.log.contains("raise LimitNOFILE"), "the refusals are logged")
    }
}
