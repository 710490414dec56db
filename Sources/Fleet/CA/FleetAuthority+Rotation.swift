// Rotating the fleet's root. The root holder publishes the new root beside the old one (the new
// one cross-signed by the old, so a host that has not seen it yet still accepts chains through
// it); its next rounds sign every host's intermediate under the new root; each host, once its
// intermediate is under the active root and its leaves carry it, acknowledges under
// `ca/acks/<node>`; and the old root leaves `ca/roots` only when every host that holds an
// unexpired intermediate (and was not removed) has acknowledged, and no unexpired intermediate
// chained to it is left.

import CertificateAuthority
import ConnectdCore
import EtcdClient
import Foundation
import X509

public struct FleetRotationError: Error, CustomStringConvertible {
    public var description: String
}

extension FleetAuthority {
    /// Rotates the root: a new key, cross-signed by the active one, published as active with the
    /// old root kept. Returns the old and new root IDs and the revision of the write.
    public func rotate(_ view: FleetView, now: Date = Date()) async throws -> (from: String, to: String, revision: Int64) {
        guard rootHolder else { throw FleetRotationError(description: "only a root holder (fleet.root_holder) can rotate the fleet's root") }
        guard let entry = view.entries[FleetKeys.roots], let published = Self.roots(view),
              let active = published.roots.first(where: \.active), let root,
              active.rootCertPEM == KeyMaterial.pem(root.identity.certificate) else {
            throw FleetRotationError(description: "this root holder does not hold the fleet's active root")
        }
        guard published.roots.count == 1 else {
            throw FleetRotationError(description: "a rotation is still in progress (the old root is pruned once every host acknowledged the new one)")
        }
        // The cross-signature lasts as long as an intermediate under the old root can, and a day.
        let (next, cross) = try IntermediateCA.nextRoot(after: root.identity, clusterID: published.clusterID,
                                                        crossSignLife: IntermediateCA.defaultTTL + 86400, now: now)
        // The new key is on disk before etcd names it, so a crash in between loses nothing.
        try Self.saveRoots(kept + [next], clusterID: published.clusterID, to: directory + "/root.json")
        kept.append(next)
        var newRoot = IntermediateCA.published(next, clusterID: published.clusterID)
        newRoot.intermediates = [ChainCertificate(pem: KeyMaterial.pem(cross), signedByRootID: active.id, notAfter: cross.notValidAfter)]
        var old = active
        old.active = false
        old.rotatedOutAt = now
        let response = try await writeRoots(clusterID: published.clusterID, [old, newRoot], expecting: entry.modRevision)
        guard response.applied else { throw FleetRotationError(description: "ca/roots changed meanwhile; try again") }
        self.root = (next, published.clusterID)
        logger.info("fleet CA: rotated the root; hosts get intermediates under it, the old one is kept until every host acknowledged",
                    metadata: ["from": "\(active.id)", "to": "\(newRoot.id)"])
        return (active.id, newRoot.id, response.header?.currentRevision ?? 0)
    }

    /// Drops inactive roots once no host can still depend on them.
    func pruneRoots(_ view: FleetView, now: Date) async throws(EtcdError) {
        guard let entry = view.entries[FleetKeys.roots], let published = Self.roots(view), published.roots.count > 1,
              let active = published.roots.first(where: \.active), let root,
              active.rootCertPEM == KeyMaterial.pem(root.identity.certificate) else { return }
        let waiting = Self.blockingPrune(view, activeRootID: active.id, now: now)
        guard waiting.isEmpty else {
            note("prune-wait:\(waiting.sorted())", "fleet CA: the old root stays until these hosts acknowledge the new one",
                 error: waiting.sorted().joined(separator: ", "))
            return
        }
        var kept = active
        let gone = Set(published.roots.filter { !$0.active }.map(\.id))
        kept.intermediates.removeAll { gone.contains($0.signedByRootID) }
        let response = try await writeRoots(clusterID: published.clusterID, [kept], expecting: entry.modRevision)
        if response.applied { logger.info("fleet CA: pruned the old root; every host acknowledged the new one", metadata: ["pruned": "\(gone.sorted())"]) }
    }

    /// What keeps the old roots: hosts with an unexpired intermediate that was not removed and
    /// that have not acknowledged `activeRootID`, and unexpired intermediates under another root.
    static func blockingPrune(_ view: FleetView, activeRootID: String, now: Date) -> Set<String> {
        var waiting: Set<String> = []
        for (_, entry) in view.entries(under: "ca/intermediates/") {
            guard let record = IntermediateRecord.decode(entry.value), view.removal(of: record.node) == nil,
                  let notAfter = RFC3339.parse(record.notAfter), notAfter > now else { continue }
            let ack = view.entries[FleetKeys.ack(record.node)].flatMap { AckRecord.decode($0.value) }
            if record.rootID != activeRootID || ack?.activeRootID != activeRootID || ack?.intermediateRootID != activeRootID {
                waiting.insert(record.node)
            }
        }
        return waiting
    }

    /// Writes `ca/acks/<node>` when this host serves under the active root with current leaves.
    func acknowledge(_ view: FleetView) async throws(EtcdError) {
        let state = caState(view)
        guard let published = Self.roots(view), let active = published.roots.first(where: \.active),
              state.signerRootID == active.id, leavesCurrent() else { return }
        let record = AckRecord(node: node, activeRootID: active.id, intermediateRootID: active.id)
        if pending.awaiting(FleetKeys.ack(node), in: view) { return }
        if view.entries[FleetKeys.ack(node)].flatMap({ AckRecord.decode($0.value) }) == record { return }
        let written = try await client.put(PutRequest(key: keys.full(FleetKeys.ack(node)), value: record.encoded))
        pending.wrote(FleetKeys.ack(node), at: written.header?.revision?.value)
        logger.info("fleet CA: acknowledged the active root", metadata: ["root": "\(active.id)"])
    }

    private func writeRoots(clusterID: String, _ roots: [CARoot], expecting revision: Int64) async throws(EtcdError) -> TxnResponse {
        let value = JSONValue.object([("ClusterID", .string(clusterID)), ("TrustDomain", .string("\(clusterID).consul")),
                                      ("Roots", .array(roots.map(\.publishedJSON)))])
        let key = keys.full(FleetKeys.roots)
        return try await client.txn(TxnRequest(compare: [.modified(key, at: revision)],
                                               success: [.put(PutRequest(key: key, value: Data(value.encoded().utf8)))]))
    }
}

/// `ca/acks/<node>`: this host serves under `activeRootID`, its intermediate signed by it.
struct AckRecord: Codable, Equatable {
    var node: String
    var activeRootID: String
    var intermediateRootID: String
    enum CodingKeys: String, CodingKey { case node = "Node", activeRootID = "ActiveRootID", intermediateRootID = "IntermediateRootID" }
    var encoded: Data { (try? JSONEncoder().encode(self)) ?? Data() }
    static func decode(_ data: Data) -> AckRecord? { try? JSONDecoder().decode(AckRecord.self, from: data) }
}
