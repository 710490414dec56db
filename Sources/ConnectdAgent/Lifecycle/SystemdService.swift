// Tells systemd how the agent is doing: STATUS= kept current from the supervisor, the watchdog
// (only while the HTTP event loop and the supervisor answer), and STOPPING=1 at shutdown.

import Foundation
import Logging
import NIOCore
import NIOPosix
import ProxySupervisor
import ServiceLifecycle
import SystemdSupport

struct SystemdService: Service, CustomStringConvertible {
    let notifier: SystemdNotifier
    let supervisor: Supervisor
    /// The longest stop grace of any proxy: the drain systemd has to wait for.
    let longestStopGrace: @Sendable () -> Duration
    /// Fleet mode: one line about the fleet, appended to STATUS=.
    let fleetSummary: @Sendable () async -> String?
    let logger: Logger
    var description: String { "SystemdService" }

    func run() async throws {
        guard notifier.isEnabled else {
            try? await gracefulShutdown()
            return
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await reportStatus() }
                if let interval = notifier.watchdogInterval() {
                    logger.info("systemd watchdog enabled", metadata: ["interval": "\(interval)"])
                    group.addTask { await watchdog(every: interval / 2) }
                }
                try? await gracefulShutdown()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            notifier.stopping(status: "stopping: draining managed proxies")
            // Ask for the drain plus a margin, in case it outlasts TimeoutStopSec.
            notifier.extendTimeout(by: longestStopGrace() + .seconds(10))
        }
    }

    /// Sends STATUS= whenever a proxy's status changes (at most every 100 ms), and the fleet line
    /// when it changed (checked at least every 5 s).
    private func reportStatus() async {
        var seen: UInt64 = 0
        var last = ""
        while !Task.isCancelled {
            var line = StatusSummary.line(supervisor.status())
            if let fleet = await fleetSummary() { line += "; " + fleet }
            if line != last {
                notifier.status(line)
                last = line
            }
            seen = supervisor.statusChanges.index
            switch await supervisor.statusChanges.wait(after: seen, timeout: .seconds(5)) {
            case .shutDown, .cancelled: return
            case .changed, .timedOut: try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// WATCHDOG=1 every `period`, but only when both the HTTP event loops and the supervisor answer.
    private func watchdog(every period: Duration) async {
        while !Task.isCancelled {
            if await Self.alive(supervisor: supervisor, within: period) {
                notifier.watchdogPing()
            } else {
                logger.error("watchdog: the HTTP event loop or the supervisor did not answer; not pinging systemd")
            }
            try? await Task.sleep(for: period)
        }
    }

    /// A liveness probe: a no-op on every NIO event loop and a call into the supervisor actor.
    static func alive(supervisor: Supervisor, within limit: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
                    _ = try? await loop.submit {}.get()
                }
                return await supervisor.ping()
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}
