// CertificateAuthority: the built-in CA as policy over values. `CAState` is the CA's part of the
// agent's one snapshot (roots with their keys, configuration); `CAPolicy` computes the next state
// (create, load, reconfigure, rotate, prune) and signs leaves from a state; the leaf cache sits
// above. Nothing here locks, persists or publishes: AgentState commits what these functions return.

import ConnectdCore
import Foundation

/// The CA as one value: its cluster ID, every root not yet pruned (the active one signs), and
/// the configuration in force.
public struct CAState: Sendable, Equatable {
    public var clusterID: String
    public var roots: [CARoot]
    /// The store revision that last changed the roots (`X-Consul-Index` of the roots endpoints).
    public var rootsIndex: UInt64
    public var config: CAConfiguration
    /// What signs leaves: the active root's key and certificate on a single host, this host's
    /// intermediate in fleet mode; nil while a fleet host waits for its first intermediate.
    public var signer: SigningIdentity?
    /// Certificates every leaf carries after itself (the fleet host's intermediate).
    public var leafChain: [String] = []
    /// Why no leaf can be signed while `signer` is nil.
    public var pendingReason = "no signing key"
    /// The roots and intermediates come from the fleet (etcd), not this host's store.
    public var fleetManaged = false
    /// Fleet mode: the root that signed this host's intermediate. Part of the signer's identity:
    /// an intermediate re-signed under a new root re-issues the leaves (their chain changes).
    public var signerRootID: String?

    public var trustDomain: String { "\(clusterID).consul" }

    public var rootsView: RootsView {
        RootsView(trustDomain: trustDomain, activeRootID: roots.first(where: \.active)?.id ?? "", roots: roots, index: rootsIndex)
    }

    /// Colon-hex key ID of the key that signs leaves now (leaves signed by another key are stale).
    public var activeSigningKeyID: String {
        guard let signer else { return "" }
        return ColonHex.encode(signer.keyID) + (signerRootID.map { "@" + $0 } ?? "")
    }

    /// When the next rotated-out root is due for pruning, if any.
    public var nextPrune: Date? {
        let keep = 2 * config.leafCertTTL.timeInterval
        return roots.compactMap { $0.rotatedOutAt?.addingTimeInterval(keep) }.min()
    }

    public init(clusterID: String, roots: [CARoot], rootsIndex: UInt64, config: CAConfiguration, signer: SigningIdentity?) {
        self.clusterID = clusterID
        self.roots = roots
        self.rootsIndex = rootsIndex
        self.config = config
        self.signer = signer
    }

    public static func == (lhs: CAState, rhs: CAState) -> Bool {
        lhs.clusterID == rhs.clusterID && lhs.roots == rhs.roots && lhs.rootsIndex == rhs.rootsIndex && lhs.config == rhs.config
            && lhs.activeSigningKeyID == rhs.activeSigningKeyID && lhs.leafChain == rhs.leafChain
            && lhs.pendingReason == rhs.pendingReason && lhs.fleetManaged == rhs.fleetManaged
    }
}

extension CAState {
    /// When the certificate that signs leaves expires (fleet mode: this host's intermediate).
    public var signerNotAfter: Date? { signer?.certificate.notValidAfter }
}
