// When to start a proxy again after it exited: immediate restarts, then capped exponential
// backoff with jitter; the count resets after a healthy uptime measured from the spawn.

import AgentState
import AgentConfig

/// How a process ended.
public enum RestartDecision: Sendable, Equatable {
    case restart(after: Duration)
    /// A permanent failure: wait for the definition to change.
    case giveUp(reason: String)
}

/// The failure count of one proxy and the decision after each exit.
public struct RestartTracker: Sendable {
    public private(set) var consecutiveFailures = 0

    public init() {}

    /// - Parameters:
    ///   - uptime: time since the process was spawned.
    ///   - jitter: a number in 0..<1 (random in production, fixed in tests).
    public mutating func decide(after status: ExitStatus, uptime: Duration, settings: ResolvedSupervision,
                                jitter: Double = Double.random(in: 0..<1)) -> RestartDecision {
        if case .exited(let code) = status, settings.permanentExitCodes.contains(Int(code)) {
            return .giveUp(reason: "exited with permanent exit code \(code); waiting for the definition to change")
        }
        if uptime >= settings.healthyAfter { consecutiveFailures = 0 }
        consecutiveFailures += 1
        guard consecutiveFailures > settings.immediateRestarts else { return .restart(after: .zero) }
        let exponent = min(consecutiveFailures - settings.immediateRestarts - 1, 30)
        var delay = settings.backoffBase * (1 << exponent)
        if delay > settings.backoffMax { delay = settings.backoffMax }
        // Jitter of up to ±10% spreads restarts of many proxies; the cap still holds.
        delay = delay * (0.9 + 0.2 * jitter)
        return .restart(after: min(delay, settings.backoffMax))
    }
}
