// One managed proxy: keeps its process running per the restart policy, stops it by process
// group with a grace period, and publishes every state change.

import AgentState
import AgentConfig
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// What a runner needs from the supervisor.
struct RunnerContext: Sendable {
    let logs: ProxyLogs
    let records: RunningRecordStore
    let logger: Logger
    let events: SupervisorEvents
    /// Called with every new status.
    let publish: @Sendable (ProxyStatus) -> Void
}

actor ProxyRunner {
    let proxyID: String
    private(set) var spec: ProxySpec
    private let context: RunnerContext
    private var status: ProxyStatus
    private var tracker = RestartTracker()
    private var process: WatchedProcess?
    private var loop: Task<Void, Never>?
    private var stopRequested = false
    private var detached = false
    private var backoffWake: CheckedContinuation<Void, Never>?

    init(spec: ProxySpec, context: RunnerContext) {
        self.spec = spec
        self.proxyID = spec.proxyID
        self.context = context
        status = ProxyStatus(proxyID: spec.proxyID, targetServiceID: spec.targetServiceID, state: .starting)
    }

    /// Starts supervising; `adopted` is a live process left by a previous connectd, carrying
    /// the spawn marker `spawnID`.
    func start(adopting adopted: WatchedProcess? = nil, spawnID: String = "") {
        guard loop == nil else { return }
        if spec.execMode == .script {
            set(.unsupported(reason: "exec_mode \"script\" is not supported; only daemon proxies run"))
            context.logger.warning("managed proxy not started: unsupported exec mode", metadata: ["proxy": "\(proxyID)", "exec_mode": "script"])
            return
        }
        loop = Task { await self.run(adopted: adopted, spawnID: spawnID) }
    }

    /// Publishes `refused-root` without ever starting.
    func refuseRoot() { set(.refusedRoot) }

    /// New restart/stop/log settings; they apply from the next decision on.
    func update(_ newSpec: ProxySpec) {
        spec = newSpec
    }

    func currentStatus() -> ProxyStatus { status }

    /// Stops the process (stop signal to the group, SIGKILL after the grace) and ends supervision.
    func stop() async {
        stopRequested = true
        backoffWake?.resume()
        backoffWake = nil
        if let process { await terminate(process) }
        await loop?.value
        set(.stopped)
    }

    /// Ends supervision and leaves the process running (connectd restarting for an upgrade).
    func detach() {
        detached = true
        stopRequested = true
        backoffWake?.resume()
        backoffWake = nil
    }

    /// Stop signal to the group, then SIGKILL to the group after the grace period; returns at exit.
    private func terminate(_ process: WatchedProcess) async {
        set(.stopping(pid: process.pid))
        await process.terminate(signal: spec.supervision.stopSignal, grace: spec.supervision.stopGrace)
    }

    // MARK: - The loop

    private func run(adopted: WatchedProcess?, spawnID adoptedSpawnID: String) async {
        var next = adopted
        var spawnID = adoptedSpawnID
        while !stopRequested {
            let current: WatchedProcess
            if let adoptedProcess = next {
                current = adoptedProcess
                next = nil
                context.logger.info("adopted running proxy", metadata: ["proxy": "\(proxyID)", "pid": "\(current.pid)"])
            } else {
                set(.starting)
                spawnID = SpawnMarker.newSpawnID()
                do {
                    // The intent first: a connectd killed right after the spawn leaves a marker to find.
                    do {
                        try context.records.save(SpawnIntent(proxyID: proxyID, spawnID: spawnID, processHash: spec.processHash))
                    } catch {
                        throw SpawnError(description: "proxy \(proxyID): not started, its running record cannot be written: \(error)")
                    }
                    let spawnStarted = ContinuousClock.now
                    current = try await ProcessSpawner.spawn(
                        spec, logs: context.logs,
                        marker: SpawnMarker.environment(dataDir: context.records.markerDataDir, spawnID: spawnID))
                    context.events.spawned(proxyID, ContinuousClock.now - spawnStarted)
                } catch {
                    context.records.remove(proxyID)
                    context.logger.error("cannot start managed proxy", metadata: ["proxy": "\(proxyID)", "error": "\(error)"])
                    if await !afterExit(.exited(127), uptime: .zero, failure: "\(error)") { return }
                    continue
                }
                context.logger.info("started managed proxy", metadata: ["proxy": "\(proxyID)", "pid": "\(current.pid)", "command": "\(spec.command)"])
            }
            process = current
            set(.running(pid: current.pid, since: current.startedAt, adopted: current.adopted))
            do {
                try context.records.save(RunningRecord(proxyID: proxyID, identity: current.identity,
                                                       processHash: spec.processHash, startedAt: current.startedAt,
                                                       spawnID: spawnID))
            } catch {
                context.logger.warning("cannot record the running proxy; it will not be re-adopted after a restart",
                                       metadata: ["proxy": "\(proxyID)", "error": "\(error)"])
            }
            if stopRequested && !detached {
                // A stop arrived while the process was being spawned.
                await terminate(current)
            }
            let exitStatus = await current.exit.value
            if current.pidfd >= 0 { close(current.pidfd) }
            process = nil
            if detached { return }
            context.records.remove(proxyID)
            status.lastExit = exitStatus
            status.lastExitAt = Date()
            if stopRequested {
                context.logger.info("managed proxy stopped", metadata: ["proxy": "\(proxyID)", "exit": "\(exitStatus)"])
                return
            }
            let uptime = Duration.seconds(Date().timeIntervalSince(current.startedAt))
            if await !afterExit(exitStatus, uptime: uptime, failure: nil) { return }
        }
    }

    /// Applies the restart policy after an exit; false when the loop should end.
    private func afterExit(_ exitStatus: ExitStatus, uptime: Duration, failure: String?) async -> Bool {
        switch tracker.decide(after: exitStatus, uptime: uptime, settings: spec.supervision) {
        case .giveUp(let reason):
            context.logger.error("managed proxy will not be restarted", metadata: ["proxy": "\(proxyID)", "reason": "\(reason)"])
            set(.failed(reason: reason))
            return false
        case .restart(let delay):
            context.logger.warning("managed proxy exited", metadata: [
                "proxy": "\(proxyID)", "exit": "\(failure ?? exitStatus.description)",
                "restart_in": "\(delay)", "failures": "\(tracker.consecutiveFailures)",
            ])
            status.restartCount += 1
            context.events.restarted(proxyID, failure == nil ? SupervisorEvents.cause(exitStatus) : "spawn_failed")
            if delay > .zero {
                set(.backingOff(until: Date().addingTimeInterval(delay.seconds)))
                await sleep(delay)
            }
            return !stopRequested
        }
    }

    /// Sleeps for `delay` unless a stop or detach wakes it first.
    private func sleep(_ delay: Duration) async {
        let timer = Task { [weak self] in
            try? await Task.sleep(for: delay)
            await self?.wakeFromBackoff()
        }
        await withCheckedContinuation { continuation in
            if stopRequested { continuation.resume() } else { backoffWake = continuation }
        }
        timer.cancel()
    }

    private func wakeFromBackoff() {
        backoffWake?.resume()
        backoffWake = nil
    }

    private func set(_ state: ProxyRunState) {
        status.state = state
        context.publish(status)
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
