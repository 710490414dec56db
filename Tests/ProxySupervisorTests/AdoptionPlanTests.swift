import Foundation
@testable import ProxySupervisor
import Testing

/// Which leftovers of a previous connectd are adopted and which are strays to stop.
@Suite struct AdoptionPlanTests {
    static func record(_ id: String, pid: Int32, spawnID: String) -> RunningRecord {
        RunningRecord(proxyID: id, identity: ProcessIdentity(pid: pid, startTime: 7, bootID: "b"), processHash: "h",
                      startedAt: Date(timeIntervalSince1970: 0), spawnID: spawnID)
    }

    @Test func recordsClaimTheirMarkersAndTheRestAreStrays() {
        let marked = [
            MarkedProcess(pid: 10, spawnID: "a", leadsGroup: true),
            MarkedProcess(pid: 11, spawnID: "a", leadsGroup: false),  // web's own child
            MarkedProcess(pid: 20, spawnID: "b", leadsGroup: true),   // intent only: adopted
            MarkedProcess(pid: 30, spawnID: "c", leadsGroup: true),   // no record: a stray
            MarkedProcess(pid: 40, spawnID: "d", leadsGroup: true),   // an old record without SpawnID names its PID
        ]
        let stored: [String: StoredRun] = [
            "web-proxy": .running(Self.record("web-proxy", pid: 10, spawnID: "a")),
            "db-proxy": .spawning(SpawnIntent(proxyID: "db-proxy", spawnID: "b", processHash: "h2")),
            "old-proxy": .running(Self.record("old-proxy", pid: 40, spawnID: "")),
            "gone-proxy": .spawning(SpawnIntent(proxyID: "gone-proxy", spawnID: "z", processHash: "h")),
        ]
        let now = Date(timeIntervalSince1970: 99)
        let plan = AdoptionPlan.make(stored: stored, marked: marked, now: now) { pid in
            ProcessIdentity(pid: pid, startTime: 5, bootID: "b")
        }
        #expect(plan.strays == [MarkedProcess(pid: 30, spawnID: "c", leadsGroup: true)])
        #expect(Set(plan.adoptable.keys) == ["web-proxy", "db-proxy", "old-proxy"])
        #expect(plan.adoptable["db-proxy"] == RunningRecord(proxyID: "db-proxy", identity: ProcessIdentity(pid: 20, startTime: 5, bootID: "b"),
                                                             processHash: "h2", startedAt: now, spawnID: "b"))
    }

    @Test func anIntentWhoseProcessIsOnlyAChildAdoptsNothingAndStopsIt() {
        // The leader died; a child that inherited the marker is left: not adoptable, a stray.
        let marked = [MarkedProcess(pid: 11, spawnID: "a", leadsGroup: false)]
        let plan = AdoptionPlan.make(stored: ["web-proxy": .spawning(SpawnIntent(proxyID: "web-proxy", spawnID: "a", processHash: "h"))],
                                     marked: marked, now: Date()) { _ in nil }
        #expect(plan.adoptable.isEmpty)
        #expect(plan.strays == marked)
    }
}
