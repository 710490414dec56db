// Fleet mode: what the fleet view brings from etcd (intentions, the CA, the catalog) replaces
// those sections of the snapshot without a local commit (etcd is their truth, the view file their
// copy on disk); intention writes go to etcd and return once the view has them.

import AgentStore
import Authorization
import CertificateAuthority
import Foundation

extension AgentState {
    /// Where intention writes go from now on (fleet mode).
    public func setSharedWriter(_ writer: any SharedIntentionWriter) { sharedWriter = writer }

    /// Publishes the sections the fleet view holds; nil leaves a section as it is. The CA keeps
    /// this host's leaf settings (`connect.ca_config`).
    public func adoptShared(intentions: IntentionTable? = nil, ca: CAState? = nil, catalog: FleetCatalog? = nil) {
        var next = snapshot
        if let intentions, intentions != next.intentions { next.intentions = intentions }
        if var ca {
            ca.config = next.ca.config
            next.ca = ca
        }
        if let catalog { next.fleetCatalog = catalog }
        guard next.intentions != snapshot.intentions || next.ca != snapshot.ca || next.fleetCatalog != snapshot.fleetCatalog else { return }
        publish(next)
    }

    /// Writes through the fleet, then waits (a bounded time) until the view shows the write, so
    /// a read on this host right after sees it.
    func writeShared(_ writer: any SharedIntentionWriter,
                     _ write: (any SharedIntentionWriter) async throws(StateError) -> UInt64) async throws(StateError) {
        let revision = try await write(writer)
        let deadline = ContinuousClock.now + .seconds(5)
        while snapshot.intentions.index < revision, ContinuousClock.now < deadline {
            if case .shutDown = await intentionsWatch.wait(after: snapshot.intentions.index, timeout: .milliseconds(500)) { return }
        }
    }
}
