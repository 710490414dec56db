import AgentConfig
import AgentState
import AgentStore
import ConnectdCore
import Foundation
import ProxySupervisor
import Testing

/// Real processes under a real supervisor. Serialized: they count descriptors and zombies.
@Suite(.serialized) struct SupervisorTests {
    @Test func spawnsWithTheCuratedEnvironmentInItsOwnSession() async throws {
        var passthrough = SupervisionSettings()
        passthrough.environmentPassthrough = ["KEEP_ME", "NOTIFY_SOCKET"]
        let harness = try SupervisorHarness(script: "env > $OUT/$CONNECT_PROXY_ID.env\nexec sleep 1000", supervision: passthrough)
        defer { harness.cleanUp() }
        await harness.start()
        try await harness.state.applyConfigFileServices([service("web")])
        #expect(await waitUntil { FileManager.default.fileExists(atPath: harness.outDir + "/web-proxy.env") && harness.pid("web-proxy") != nil })
        try await Task.sleep(for: .milliseconds(100))
        let token = try #require(harness.state.snapshot.proxies["web-proxy"]?.token)
        let environment = Dictionary(uniqueKeysWithValues: try String(contentsOfFile: harness.outDir + "/web-proxy.env", encoding: .utf8)
            .split(separator: "\n").compactMap { line -> (String, String)? in
                guard let eq = line.firstIndex(of: "=") else { return nil }
                return (String(line[..<eq]), String(line[line.index(after: eq)...]))
            })
        #expect(environment["CONSUL_PROXY_ID"] == "web-proxy")
        #expect(environment["CONNECT_PROXY_ID"] == "web-proxy")
        #expect(environment["CONSUL_PROXY_TOKEN"] == token)
        #expect(environment["CONNECT_PROXY_TOKEN"] == token)
        #expect(environment["CONSUL_HTTP_TOKEN"] == token)
        #expect(environment["CONSUL_HTTP_ADDR"] == "127.0.0.1:8500")
        #expect(environment["CONSUL_HTTP_SSL"] == "false")
        #expect(environment["PATH"] == "/usr/bin:/bin")
        #expect(environment["HOME"] == "/root")
        #expect(environment["LANG"] == "C.UTF-8")
        #expect(environment["KEEP_ME"] == "kept")
        for scrubbed in ["DROP_ME", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "INVOCATION_ID"] {
            #expect(environment[scrubbed] == nil, "\(scrubbed)")
        }
        let pid = try #require(harness.pid("web-proxy"))
        #expect(getsid(pid) == pid)
        #expect(getpgid(pid) == pid)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/0")) == "/dev/null")
        #expect(try String(contentsOfFile: harness.dataDir + "/proxy/pids/web-proxy.pid", encoding: .utf8) == "\(pid)")
        await harness.stop()
        #expect(!isAlive(pid))
    }

    @Test func killMinus9RestartsAndOutputReachesTheLog() async throws {
        let harness = try SupervisorHarness(script: "echo started $$\necho oops >&2\nexec sleep 1000")
        defer { harness.cleanUp() }
        await harness.start()
        try await harness.state.applyConfigFileServices([service("web")])
        #expect(await waitUntil { harness.pid("web-proxy") != nil })
        let first = try #require(harness.pid("web-proxy"))
        // Kill it only once it has written both lines: a kill right after the spawn can land
        // before the script's `echo oops` (CI saw one `oops` of two for that reason).
        #expect(await waitUntil {
            let errors = (try? String(contentsOfFile: harness.dataDir + "/proxy/logs/web-proxy-stderr.log", encoding: .utf8)) ?? ""
            return errors == "oops\n"
        })
        kill(first, SIGKILL)
        #expect(await waitUntil { (harness.pid("web-proxy") ?? first) != first })
        let status = try #require(harness.status("web-proxy"))
        #expect(status.restartCount == 1)
        #expect(status.lastExit == .signaled(SIGKILL))
        let second = try #require(harness.pid("web-proxy"))
        // stdout and stderr are drained separately: wait for both.
        #expect(await waitUntil {
            let log = (try? String(contentsOfFile: harness.dataDir + "/proxy/logs/web-proxy-stdout.log", encoding: .utf8)) ?? ""
            let errors = (try? String(contentsOfFile: harness.dataDir + "/proxy/logs/web-proxy-stderr.log", encoding: .utf8)) ?? ""
            return log.contains("started \(first)") && log.contains("started \(second)") && errors.count >= "oops\noops\n".count
        })
        let errors = try String(contentsOfFile: harness.dataDir + "/proxy/logs/web-proxy-stderr.log", encoding: .utf8)
        #expect(errors == "oops\noops\n")
        let mode = try FileManager.default.attributesOfItem(atPath: harness.dataDir + "/proxy/logs/web-proxy-stdout.log")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        await harness.stop()
    }

    /// With the default policy (3 immediate, 2 s doubling, reset after 10 s): five quick crashes,
    /// a 12 s healthy run, then the next crash restarts at once.
    @Test func backoffResetsAfterAHealthyRun() async throws {
        let harness = try SupervisorHarness(script: """
            n=$(cat $OUT/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > $OUT/count
            [ $n -le 5 ] && exit 1
            exec sleep 1000
            """)
        defer { harness.cleanUp() }
        await harness.start()
        try await harness.state.applyConfigFileServices([service("web")])
        // Crashes 4 and 5 back off about 2 s and 4 s.
        #expect(await waitUntil(20) { harness.pid("web-proxy") != nil && harness.status("web-proxy")?.restartCount == 5 })
        let healthy = try #require(harness.pid("web-proxy"))
        try await Task.sleep(for: .seconds(12))
        kill(healthy, SIGKILL)
        let killedAt = Date()
        // Without the reset the next wait would be 8 s.
        #expect(await waitUntil(10) { (harness.pid("web-proxy") ?? healthy) != healthy })
        #expect(Date().timeIntervalSince(killedAt) < 1.0)
        #expect(harness.status("web-proxy")?.restartCount == 6)
        await harness.stop()
    }

    @Test func permanentExitCodeStopsRetrying() async throws {
        let harness = try SupervisorHarness(script: "echo x >> $OUT/runs\nexit 78")
        defer { harness.cleanUp() }
        await harness.start()
        try await harness.state.applyConfigFileServices([service("web")])
        #expect(await waitUntil { harness.status("web-proxy")?.state.name == "failed" })
        try await Task.sleep(for: .milliseconds(300))
        #expect(try String(contentsOfFile: harness.outDir + "/runs", encoding: .utf8) == "x\n")
        #expect(harness.status("web-proxy")?.reason?.contains("78") == true)
        await harness.stop()
    }

    @Test func configChangesDoNotRestartButCommandChangesDo() async throws {
        let harness = try SupervisorHarness(script: "exec sleep 1000")
        defer { harness.cleanUp() }
        await harness.start()
        try await harness.state.applyConfigFileServices([service("web")])
        #expect(await waitUntil { harness.pid("web-proxy") != nil })
        let pid = try #require(harness.pid("web-proxy"))
        try await harness.state.applyConfigFileServices([service("web", config: .object([("foo", .string("bar")), ("bind_port", .int(30050))]))])
        try await Task.sleep(for: .milliseconds(300))
        #expect(harness.pid("web-proxy") == pid)
        try await harness.state.applyConfigFileServices([service("web", config: .object([("foo", .string("bar"))]), command: ["/bin/sleep", "999"])])
        #expect(await waitUntil { (harness.pid("web-proxy") ?? pid) != pid })
        #expect(!isAlive(pid))
        await harness.stop()
    }

    @Test func removingTheServiceStopsTheProxyAndRemovesItsPidFile() async throws {
        let harness = try SupervisorHarness(script: "exec sleep 1000")
        defer { harness.cleanUp() }
        await harness.start()
        try await harness.state.applyConfigFileServices([service("web"), service("db")])
        #expect(await waitUntil { harness.pid("web-proxy") != nil && harness.pid("db-proxy") != nil })
        let pid = try #require(harness.pid("web-proxy"))
        try await harness.state.applyConfigFileServices([service("db")])
        #expect(await waitUntil { harness.status("web-proxy") == nil })
        #expect(!isAlive(pid))
        #expect(!FileManager.default.fileExists(atPath: harness.dataDir + "/proxy/pids/web-proxy.pid"))
        #expect(harness.pid("db-proxy") != nil)
        await harness.stop()
    }

    @Test func rootWithoutPermissionStartsNothing() async throws {
        let harness = try SupervisorHarness(script: "echo ran > $OUT/ran\nexec sleep 1000", isRoot: true, allowRoot: false)
        defer { harness.cleanUp() }
        await harness.start()
        try await harness.state.applyConfigFileServices([service("web")])
        #expect(await waitUntil { harness.status("web-proxy")?.state == .refusedRoot })
        try await Task.sleep(for: .milliseconds(200))
        #expect(!FileManager.default.fileExists(atPath: harness.outDir + "/ran"))
        #expect(harness.status("web-proxy")?.reason?.contains("allow_managed_root") == true)
        // Allowing it in a reload starts the proxy.
        var allowed = harness.config.value
        allowed.allowManagedRoot = true
        harness.config.set(allowed)
        await harness.supervisor.requestReconcile()
        #expect(await waitUntil { harness.pid("web-proxy") != nil })
        #expect(FileManager.default.fileExists(atPath: harness.outDir + "/ran"))
        await harness.stop()
    }

    @Test func scriptModeIsReportedUnsupported() async throws {
        let harness = try SupervisorHarness(script: "echo ran > $OUT/ran")
        defer { harness.cleanUp() }
        await harness.start()
        try await harness.state.applyConfigFileServices([service("web", mode: .script)])
        #expect(await waitUntil { harness.status("web-proxy")?.state.name == "unsupported" })
        #expect(!FileManager.default.fileExists(atPath: harness.outDir + "/ran"))
        await harness.stop()
    }

    @Test func stopEscalatesToSIGKILLAfterTheGrace() async throws {
        var settings = SupervisionSettings()
        settings.stopGrace = .milliseconds(300)
        let harness = try SupervisorHarness(script: "trap '' TERM\nwhile true; do sleep 0.05; done", supervision: settings)
        defer { harness.cleanUp() }
        await harness.start()
        try await harness.state.applyConfigFileServices([service("web")])
        #expect(await waitUntil { harness.pid("web-proxy") != nil })
        let pid = try #require(harness.pid("web-proxy"))
        try await Task.sleep(for: .milliseconds(100))
        let started = Date()
        await harness.stop()
        #expect(!isAlive(pid))
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(harness.status("web-proxy")?.lastExit == .signaled(SIGKILL))
        #expect(zombieChildren().isEmpty)
    }

    @Test func descriptorsStayFlatAcross200Restarts() async throws {
        var settings = SupervisionSettings()
        settings.immediateRestarts = 10_000
        let harness = try SupervisorHarness(script: "n=$(cat $OUT/count 2>/dev/null || echo 0); echo $((n+1)) > $OUT/count\n[ $n -ge 205 ] && exec sleep 1000\nexit 3",
                                            supervision: settings)
        defer { harness.cleanUp() }
        await harness.start()
        try await harness.state.applyConfigFileServices([service("web")])
        #expect(await waitUntil(30) { (harness.status("web-proxy")?.restartCount ?? 0) >= 20 })
        let before = supervisorDescriptorCount(dataDir: harness.dataDir)
        #expect(await waitUntil(60) { harness.pid("web-proxy") != nil && (harness.status("web-proxy")?.restartCount ?? 0) >= 200 })
        let after = supervisorDescriptorCount(dataDir: harness.dataDir)
        #expect(before >= 4, "the pipes and log files should be counted (\(before))")
        // A process being spawned or reaped at either sample holds up to 3 more (pidfd, 2 pipe
        // ends); a leak of one descriptor per restart would show ~180 more.
        #expect(after <= before + 3, "descriptors before \(before), after \(after)")
        await harness.stop()
        #expect(zombieChildren().isEmpty)
    }

    @Test func logsRotateBySizeWithoutLosingALine() async throws {
        var settings = SupervisionSettings()
        settings.logMaxBytes = 4096
        settings.logMaxFiles = 20
        let harness = try SupervisorHarness(script: """
            i=0; while [ $i -lt 300 ]; do printf 'line %04d %s\\n' $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done
            exec sleep 1000
            """, supervision: settings)
        defer { harness.cleanUp() }
        await harness.start()
        try await harness.state.applyConfigFileServices([service("web")])
        let base = harness.dataDir + "/proxy/logs/web-proxy-stdout.log"
        func allLines() -> [String] {
            var text = ""
            for index in stride(from: 20, through: 1, by: -1) {
                text += (try? String(contentsOfFile: "\(base).\(index)", encoding: .utf8)) ?? ""
            }
            text += (try? String(contentsOfFile: base, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").map(String.init)
        }
        #expect(await waitUntil { allLines().count == 300 })
        let lines = allLines()
        #expect(lines.first?.hasPrefix("line 0000") == true)
        #expect(lines.last?.hasPrefix("line 0299") == true)
        #expect(lines.enumerated().allSatisfy { $0.element.hasPrefix(String(format: "line %04d", $0.offset)) })
        #expect(FileManager.default.fileExists(atPath: base + ".1"))
        for index in 1...5 where FileManager.default.fileExists(atPath: "\(base).\(index)") {
            let size = (try FileManager.default.attributesOfItem(atPath: "\(base).\(index)")[.size] as? Int) ?? 0
            #expect(size <= 4096)
        }
        await harness.stop()
    }
}
