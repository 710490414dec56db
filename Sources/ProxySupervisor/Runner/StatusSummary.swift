// One human line about every proxy, for systemd's STATUS= (`systemctl status`).

import AgentState
import Foundation

public enum StatusSummary {
    /// `5 proxies: 4 running, 1 backing-off (web-proxy exit code 1, retry in 4s); 7 restarts, last web-proxy signal 9`.
    public static func line(_ statuses: [ProxyStatus], now: Date = Date()) -> String {
        guard !statuses.isEmpty else { return "no managed proxies" }
        var counts: [String: Int] = [:]
        for status in statuses { counts[status.state.name, default: 0] += 1 }
        let order = ["running", "starting", "backing-off", "stopping", "failed", "unsupported", "refused-root", "stopped"]
        let parts = order.compactMap { name in counts[name].map { "\($0) \(name)" } }
        var line = "\(statuses.count) \(statuses.count == 1 ? "proxy" : "proxies"): " + parts.joined(separator: ", ")
        if let waiting = statuses.first(where: { $0.state.name == "backing-off" }), let retry = waiting.nextRetryAt {
            let seconds = max(0, Int(retry.timeIntervalSince(now).rounded(.up)))
            line += " (\(waiting.proxyID) \(waiting.lastExit?.description ?? "exited"), retry in \(seconds)s)"
        } else if let failed = statuses.first(where: { $0.state.name == "failed" }) {
            line += " (\(failed.proxyID): \(failed.reason ?? "failed"))"
        }
        let restarts = statuses.reduce(0) { $0 + $1.restartCount }
        if restarts > 0, let latest = statuses.filter({ $0.lastExitAt != nil }).max(by: { $0.lastExitAt! < $1.lastExitAt! }),
           let exit = latest.lastExit {
            line += "; \(restarts) \(restarts == 1 ? "restart" : "restarts"), last \(latest.proxyID) \(exit)"
        }
        return line
    }
}
