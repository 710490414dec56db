import AgentConfig
import AgentState
import AgentStore
import ConnectdCore
import Foundation
import ProxySupervisor
import Testing

/// Adoption across connectd restarts; part of the serialized SupervisorTests suite.
extension SupervisorTests {
    /// A first connectd that starts `web-proxy` and exits leaving it running (as on SIGUSR2).
    func proxyLeftRunning(script: String) async throws -> (SupervisorHarness, Int32) {
        let first = try SupervisorHarness(script: script)
        await first.start()
        try await first.state.applyConfigFileServices([service("web")])
        #expect(await waitUntil { first.pid("web-proxy") != nil })
        let pid = try #require(first.pid("web-proxy"))
        await first.supervisor.leaveProxiesRunning()
        await first.stop()
        #expect(isAlive(pid))
        return (first, pid)
    }

    @Test func leftRunningProxiesAreAdoptedNotDuplicated() async throws {
        let (first, pid) = try await proxyLeftRunning(script: "echo run >> $OUT/runs\nexec sleep 1000")
        defer { first.cleanUp() }

        // A new connectd on the same data_dir.
        let second = try SupervisorHarness(script: "echo run >> $OUT/runs\nexec sleep 1000", dataDir: first.dataDir)
        await second.start()
        try await second.state.applyConfigFileServices([service("web")])
        #expect(await waitUntil { second.pid("web-proxy") != nil })
        #expect(second.pid("web-proxy") == pid)
        if case .running(_, _, let adopted)? = second.status("web-proxy")?.state { #expect(adopted) }
        #expect(try String(contentsOfFile: first.outDir + "/runs", encoding: .utf8) == "run\n")

        // A dead adopted proxy is noticed through its pidfd and restarted at once.
        kill(pid, SIGKILL)
        let killed = Date()
        #expect(await waitUntil { (second.pid("web-proxy") ?? pid) != pid })
        #expect(Date().timeIntervalSince(killed) < 1)
        await second.stop()
        #expect(second.supervisor.status().allSatisfy { $0.pid == nil })
    }

    @Test func aRecordNamingAnUnrelatedLiveProcessIsNeverSignalled() async throws {
        let harness = try SupervisorHarness(script: "exec sleep 1000")
        defer { harness.cleanUp() }
        // An unrelated process whose PID a stale record names, with the wrong start time.
        let unrelated = Process()
        unrelated.executableURL = URL(fileURLWithPath: "/bin/sleep")
        unrelated.arguments = ["30"]
        try unrelated.run()
        defer { unrelated.terminate() }
        try FileManager.default.createDirectory(atPath: harness.dataDir + "/proxy/running", withIntermediateDirectories: true)
        let bootID = try String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let stale = JSONValue.object([
            ("ProxyID", .string("web-proxy")), ("Pid", .int(Int64(unrelated.processIdentifier))), ("StartTime", .int(1)),
            ("BootID", .string(bootID)), ("ProcessHash", .string("whatever")), ("StartedAt", .int(0)),
        ])
        try stale.encoded().write(toFile: harness.dataDir + "/proxy/running/web-proxy.json", atomically: true, encoding: .utf8)

        await harness.start()
        try await harness.state.applyConfigFileServices([service("web")])
        #expect(await waitUntil { harness.pid("web-proxy") != nil })
        #expect(harness.pid("web-proxy") != unrelated.processIdentifier)
        if case .running(_, _, let adopted)? = harness.status("web-proxy")?.state { #expect(!adopted) }
        await harness.stop()
        #expect(unrelated.isRunning)
    }

    @Test func anOwnProcessWithAnOutdatedSpecIsReplaced() async throws {
        let (first, pid) = try await proxyLeftRunning(script: "exec sleep 1000")
        defer { first.cleanUp() }

        let second = try SupervisorHarness(script: "exec sleep 1000", dataDir: first.dataDir)
        await second.start()
        try await second.state.applyConfigFileServices([service("web", command: ["/bin/sleep", "998"])])
        #expect(await waitUntil { second.pid("web-proxy") != nil && second.pid("web-proxy") != pid })
        #expect(await waitUntil { !isAlive(pid) })
        await second.stop()
    }

    /// The marked processes of `dataDir` alive now, read from /proc as the supervisor does.
    func markedPIDs(_ dataDir: String) -> [Int32] {
        let canonical = URL(fileURLWithPath: dataDir).resolvingSymlinksInPath().standardizedFileURL.path
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).filter { pid in
            guard let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
            return environ.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == "CONNECTD_DATA_DIR=" + canonical }
        }
    }

    /// A lost or garbage record no longer leaves an untracked duplicate: the marked process is
    /// found in /proc and stopped before the new connectd spawns its own.
    @Test(arguments: ["missing", "garbage"])
    func aProxyWhoseRecordWasLostIsStoppedNotDuplicated(damage: String) async throws {
        let (first, pid) = try await proxyLeftRunning(script: "exec sleep 1000")
        defer { first.cleanUp() }
        let recordPath = first.dataDir + "/proxy/running/web-proxy.json"
        if damage == "missing" {
            try FileManager.default.removeItem(atPath: recordPath)
        } else {
            try "{ garbage".write(toFile: recordPath, atomically: true, encoding: .utf8)
        }
        #expect(markedPIDs(first.dataDir) == [pid])

        let second = try SupervisorHarness(script: "exec sleep 1000", dataDir: first.dataDir)
        await second.start()
        try await second.state.applyConfigFileServices([service("web")])
        #expect(await waitUntil { second.pid("web-proxy") != nil })
        #expect(second.pid("web-proxy") != pid)
        #expect(!isAlive(pid), "the untracked process was stopped")
        #expect(markedPIDs(first.dataDir) == [try #require(second.pid("web-proxy"))])
        await second.stop()
        #expect(markedPIDs(first.dataDir).isEmpty)
    }

    /// connectd killed after the spawn but before the PID was recorded: the intent written
    /// before the spawn names the marker, and the process is adopted.
    @Test func aSpawnRecordedOnlyAsAnIntentIsAdopted() async throws {
        let (first, pid) = try await proxyLeftRunning(script: "echo run >> $OUT/runs\nexec sleep 1000")
        defer { first.cleanUp() }
        let recordPath = first.dataDir + "/proxy/running/web-proxy.json"
        let record = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: recordPath))))
        let intent = JSONValue.object([("ProxyID", .string("web-proxy")), ("SpawnID", try #require(record["SpawnID"])),
                                       ("ProcessHash", try #require(record["ProcessHash"])), ("Spawning", .bool(true))])
        try intent.encoded().write(toFile: recordPath, atomically: true, encoding: .utf8)

        let second = try SupervisorHarness(script: "echo run >> $OUT/runs\nexec sleep 1000", dataDir: first.dataDir)
        await second.start()
        try await second.state.applyConfigFileServices([service("web")])
        #expect(await waitUntil { second.pid("web-proxy") != nil })
        #expect(second.pid("web-proxy") == pid)
        #expect(try String(contentsOfFile: first.outDir + "/runs", encoding: .utf8) == "run\n")
        await second.stop()
        #expect(markedPIDs(first.dataDir).isEmpty)
    }
}
