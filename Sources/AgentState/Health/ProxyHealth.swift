// A managed proxy's health as the catalog shows it: its listener check and, Consul's alias
// behaviour, the worst state of its target's checks. One rule for the local health endpoints
// and for what fleet mode publishes to other hosts.

import AgentConfig

public enum ProxyHealth {
    /// The worst state among `service`'s checks and a line naming the ones not passing; nil
    /// when the service has no checks.
    public static func aggregate(_ service: ServiceDefinition, board: CheckBoard) -> (status: CheckHealth, output: String)? {
        guard !service.checks.isEmpty else { return nil }
        var worst = CheckHealth.passing
        var failing: [String] = []
        for check in service.checks {
            let status = board.result(of: check.id)?.status ?? check.initialStatus
            worst = worst.worse(status)
            if status != .passing { failing.append("\(check.name) is \(status.rawValue)") }
        }
        return (worst, failing.isEmpty ? "All checks passing." : failing.joined(separator: "; "))
    }

    /// Passing only while the listener check and every check of `target` pass.
    public static func combined(listener: CheckStatus, target: ServiceDefinition?, board: CheckBoard) -> CheckStatus {
        guard listener.isPassing, let target, let alias = aggregate(target, board: board), alias.status != .passing else { return listener }
        return CheckStatus(status: "critical", output: "\(target.id): \(alias.output)")
    }
}
