// What the supervisor reports per proxy (GET /v1/agent/proxies, `connectd status`), published
// through the state so readers (the HTTP routes) need not know the supervisor.

import Foundation

/// The lifecycle of one managed proxy process.
public enum ProxyRunState: Sendable, Equatable {
    /// About to spawn (or adopt).
    case starting
    /// A live process; `adopted` when it was left by a previous connectd.
    case running(pid: Int32, since: Date, adopted: Bool)
    /// Waiting before the next start after an exit.
    case backingOff(until: Date)
    /// Stop signal sent; SIGKILL follows after the grace period.
    case stopping(pid: Int32)
    case stopped
    /// Will not restart until the definition changes (permanent exit code, unusable command).
    case failed(reason: String)
    /// `exec_mode: script` is accepted but never run, as in Consul.
    case unsupported(reason: String)
    /// connectd runs as root and `connect.proxy.allow_managed_root` is false.
    case refusedRoot

    public var name: String {
        switch self {
        case .starting: "starting"
        case .running: "running"
        case .backingOff: "backing-off"
        case .stopping: "stopping"
        case .stopped: "stopped"
        case .failed: "failed"
        case .unsupported: "unsupported"
        case .refusedRoot: "refused-root"
        }
    }
}

/// How a proxy process ended.
public enum ExitStatus: Sendable, Hashable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)
    /// An adopted process (not our child): its status cannot be read.
    case unknown

    public var description: String {
        switch self {
        case .exited(let code): "exit code \(code)"
        case .signaled(let signal): "signal \(signal)"
        case .unknown: "exit status unknown (adopted process)"
        }
    }
}

public struct ProxyStatus: Sendable, Equatable {
    public var proxyID: String
    public var targetServiceID: String
    public var state: ProxyRunState
    public var restartCount: Int
    public var lastExit: ExitStatus?
    public var lastExitAt: Date?

    public init(proxyID: String, targetServiceID: String, state: ProxyRunState) {
        self.proxyID = proxyID
        self.targetServiceID = targetServiceID
        self.state = state
        restartCount = 0
    }

    public var pid: Int32? {
        switch state {
        case .running(let pid, _, _), .stopping(let pid): pid
        default: nil
        }
    }

    public var startedAt: Date? {
        if case .running(_, let since, _) = state { return since }
        return nil
    }

    public var nextRetryAt: Date? {
        if case .backingOff(let until) = state { return until }
        return nil
    }

    public var reason: String? {
        switch state {
        case .failed(let reason), .unsupported(let reason): reason
        case .refusedRoot: "connectd runs as root and connect.proxy.allow_managed_root is false"
        default: nil
        }
    }
}
