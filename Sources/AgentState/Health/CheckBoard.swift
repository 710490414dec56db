// The current state of every health check the agent runs (service and node checks), written by
// the check runner and by TTL updates, read by the health and agent-check endpoints. Runtime
// only: after a restart every check starts from its initial status again, as in Consul.

import AgentConfig
import Foundation
import Synchronization

public struct CheckResult: Sendable, Equatable {
    public var status: CheckHealth
    public var output: String
    /// When `status` began (for `deregister_critical_service_after`).
    public var since: Date

    public init(status: CheckHealth, output: String, since: Date = Date()) {
        self.status = status
        self.output = output
        self.since = since
    }
}

public final class CheckBoard: Sendable {
    private struct Entry {
        var result: CheckResult
        /// TTL checks: when the check turns critical unless updated first.
        var ttlDeadline: Date?
        var ttl: Duration?
    }

    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    /// The result of check `id`; nil for a check the runner does not know (yet).
    public func result(of id: String) -> CheckResult? { entries.withLock { $0[id]?.result } }

    /// Starts tracking `check` at its initial status (kept when it is already tracked).
    public func track(_ check: CheckDefinition, now: Date = Date()) {
        entries.withLock { entries in
            guard entries[check.id] == nil else { return }
            var entry = Entry(result: CheckResult(status: check.initialStatus, output: "", since: now))
            if case .ttl(let ttl) = check.probe {
                entry.ttl = ttl
                entry.ttlDeadline = now.addingTimeInterval(Double(ttl.components.seconds) + Double(ttl.components.attoseconds) / 1e18)
            }
            entries[check.id] = entry
        }
    }

    /// Records a result; returns true when the status changed (only a status change moves the
    /// index, so an output that varies does not wake every health watcher).
    @discardableResult
    public func record(_ id: String, _ status: CheckHealth, output: String, now: Date = Date()) -> Bool {
        entries.withLock { entries in
            guard var entry = entries[id] else { return false }
            let changed = entry.result.status != status
            if entry.result.status != status { entry.result.since = now }
            entry.result.status = status
            entry.result.output = output
            entries[id] = entry
            return changed
        }
    }

    public enum UpdateOutcome: Equatable { case updated(changed: Bool), notTTL }

    /// A TTL check's update (`PUT /v1/agent/check/pass/:id`, ...): sets the status and restarts
    /// the TTL. `.notTTL` when `id` is no TTL check.
    public func update(ttlCheck id: String, _ status: CheckHealth, output: String, now: Date = Date()) -> UpdateOutcome {
        entries.withLock { entries in
            guard var entry = entries[id], let ttl = entry.ttl else { return .notTTL }
            let changed = entry.result.status != status
            if entry.result.status != status { entry.result.since = now }
            entry.result = CheckResult(status: status, output: output, since: entry.result.since)
            entry.ttlDeadline = now.addingTimeInterval(Double(ttl.components.seconds) + Double(ttl.components.attoseconds) / 1e18)
            entries[id] = entry
            return .updated(changed: changed)
        }
    }

    /// TTL checks whose time ran out: marked critical; returns their IDs.
    public func expireTTLs(now: Date = Date()) -> [String] {
        entries.withLock { entries in
            var expired: [String] = []
            for (id, entry) in entries {
                guard let deadline = entry.ttlDeadline, deadline <= now else { continue }
                var next = entry
                next.ttlDeadline = nil
                if next.result.status != .critical { next.result.since = now }
                next.result.status = .critical
                next.result.output = "TTL expired"
                entries[id] = next
                expired.append(id)
            }
            return expired
        }
    }

    /// Forgets one check (its definition changed: it starts again from its initial status).
    public func forget(_ id: String) { entries.withLock { _ = $0.removeValue(forKey: id) } }

    /// Forgets checks no longer defined.
    public func retain(only ids: Set<String>) {
        entries.withLock { entries in entries = entries.filter { ids.contains($0.key) } }
    }
}
