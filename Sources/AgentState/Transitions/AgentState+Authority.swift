// CA transitions: reconfiguration through the API (rotating the root when the key changes) and
// pruning. Key generation and signing run here, in the actor, never under the lock readers take.

import AgentConfig
import CertificateAuthority
import Foundation
import Logging

extension AgentState {
    /// `PUT /v1/connect/ca/configuration`: updates the settings; a new key (given, or
    /// `generate_key`) rotates the root. Returns true when the root was rotated.
    @discardableResult
    public func applyCAConfiguration(_ settings: CASettings, now: Date = Date()) throws(StateError) -> Bool {
        var next = snapshot
        let rotated: Bool
        do throws(CAError) {
            (next.ca, rotated) = try CAPolicy.applying(settings, fileDigest: nil, to: next.ca, now: now)
        } catch {
            throw .ca(error)
        }
        let committed = try commit(next)
        if rotated { logRotation(committed.ca) }
        return rotated
    }

    /// Removes roots rotated out more than 2 × leaf TTL ago. Returns when the next one is due.
    @discardableResult
    public func pruneCA(now: Date = Date()) throws(StateError) -> Date? {
        var next = snapshot
        // A fleet's roots are pruned by its root holder, in etcd.
        guard !next.ca.fleetManaged else { return nil }
        guard let (pruned, removed) = CAPolicy.pruned(next.ca, now: now) else { return next.ca.nextPrune }
        next.ca = pruned
        let committed = try commit(next)
        for id in removed { logger.info("pruned rotated-out CA root", metadata: ["root": "\(id)"]) }
        return committed.ca.nextPrune
    }

    func logRotation(_ ca: CAState) {
        guard let root = ca.roots.first(where: \.active) else { return }
        logger.info("rotated the CA root", metadata: ["root": "\(root.id)", "serial": "\(root.serialNumber)"])
    }
}
