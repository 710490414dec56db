import Foundation
import Testing
@testable import Fleet

/// A host's own CA writes are not repeated while its view lags behind them.
struct PendingWritesTests {
    @Test func aWriteIsAwaitedUntilTheViewShowsItOrPatienceRunsOut() {
        var pending = PendingWrites(patience: .seconds(5))
        let start = ContinuousClock.now
        var view = FleetView()
        var held = pending.awaiting("ca/csr/host-a", in: view, now: start)
        #expect(!held, "nothing written yet")
        pending.wrote("ca/csr/host-a", at: 12, now: start)
        held = pending.awaiting("ca/csr/host-a", in: view, now: start + .milliseconds(10))
        #expect(held, "the view lacks the key")
        view.entries["ca/csr/host-a"] = ViewEntry(value: Data(), createRevision: 3, modRevision: 9, lease: 0)
        held = pending.awaiting("ca/csr/host-a", in: view, now: start + .milliseconds(20))
        #expect(held, "the view has an older write")
        held = pending.awaiting("ca/acks/host-a", in: view, now: start)
        #expect(!held, "another key is not held back")
        view.entries["ca/csr/host-a"]?.modRevision = 12
        held = pending.awaiting("ca/csr/host-a", in: view, now: start + .milliseconds(30))
        #expect(!held, "the view shows the write")
        held = pending.awaiting("ca/csr/host-a", in: FleetView(), now: start + .milliseconds(40))
        #expect(!held, "and it is forgotten")

        pending.wrote("ca/acks/host-a", at: 20, now: start)
        held = pending.awaiting("ca/acks/host-a", in: FleetView(), now: start + .seconds(5))
        #expect(!held, "a write lost meanwhile is made again")
    }
}
