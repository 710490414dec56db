// Keys this host wrote that its view may not show yet. The CA pass runs on every view change
// and every few seconds; until the view has caught up with a write, the pass would see the old
// value and write again (a root holder posted its own CSR six times in 80 ms at start-up).

import EtcdClient

struct PendingWrites {
    private var writes: [String: (revision: Int64, at: ContinuousClock.Instant)] = [:]
    /// How long a write is trusted to reach the view before the pass may write again.
    let patience: Duration

    init(patience: Duration = .seconds(5)) { self.patience = patience }

    /// Notes a write of `key` (relative) that etcd committed at `revision`.
    mutating func wrote(_ key: String, at revision: Int64?, now: ContinuousClock.Instant = .now) {
        writes[key] = (revision ?? 0, now)
    }

    /// Whether `key` was written and `view` does not show that write yet (within `patience`).
    mutating func awaiting(_ key: String, in view: FleetView, now: ContinuousClock.Instant = .now) -> Bool {
        guard let write = writes[key] else { return false }
        if (view.entries[key]?.modRevision ?? 0) >= write.revision || now - write.at >= patience {
            writes[key] = nil
            return false
        }
        return true
    }
}
