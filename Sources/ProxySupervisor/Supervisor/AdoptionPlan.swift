// At start: which processes left by a previous connectd are adopted, and which are strays to
// stop, from the running records and the spawn markers found in /proc. A pure decision.

import Foundation

struct AdoptionPlan: Sendable, Equatable {
    /// Records to adopt from (identity proven again when each proxy's runner starts).
    var adoptable: [String: RunningRecord]
    /// Marked processes no record claims: spawned by a connectd that died before recording
    /// them, or whose record was lost. Each is stopped before any proxy is spawned.
    var strays: [MarkedProcess]

    /// - Parameter identify: the live identity of a PID (``ProcessIdentity/current(pid:)``).
    static func make(stored: [String: StoredRun], marked: [MarkedProcess], now: Date,
                     identify: (Int32) -> ProcessIdentity?) -> AdoptionPlan {
        var adoptable: [String: RunningRecord] = [:]
        var claimed = Set<String>()
        for (id, run) in stored {
            switch run {
            case .running(let record):
                adoptable[id] = record
                if !record.spawnID.isEmpty {
                    claimed.insert(record.spawnID)
                } else if let process = marked.first(where: { $0.pid == record.identity.pid }) {
                    claimed.insert(process.spawnID)
                }
            case .spawning(let intent):
                // Spawned, but killed before the PID was recorded: the marker names the process.
                guard let process = marked.first(where: { $0.spawnID == intent.spawnID && $0.leadsGroup }),
                      let identity = identify(process.pid) else { continue }
                adoptable[id] = RunningRecord(proxyID: id, identity: identity, processHash: intent.processHash,
                                              startedAt: now, spawnID: intent.spawnID)
                claimed.insert(intent.spawnID)
            }
        }
        return AdoptionPlan(adoptable: adoptable, strays: marked.filter { !claimed.contains($0.spawnID) })
    }
}
