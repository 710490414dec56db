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
}
