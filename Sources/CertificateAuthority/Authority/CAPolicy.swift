// The CA's transitions as functions from one `CAState` to the next: create, load, reconfigure
// (rotating the root when the key changes), prune. They never touch the store; a caller commits
// `operations(from:)` and publishes `stamped(revision:previous:)`.

import AgentConfig
import AgentStore
import ConnectdCore
import Crypto
import Foundation
import X509

public enum CAPolicy {
    public static let rootsKey = "ca/roots"
    public static let configKey = "ca/config"
    /// Written with the first root and never removed except by `connectd ca reset`: tells "the CA
    /// files are missing or damaged" apart from "first start".
    public static let markerKey = "agent/ca"

    // MARK: - Creating and loading

    /// A new CA: a cluster ID (configured, or random) and its first root.
    public static func create(settings: CASettings, now: Date) throws(CAError) -> CAState {
        let clusterID = settings.clusterID ?? UUID().uuidString.lowercased()
        let signer = try newSigner(settings: settings, trustDomain: "\(clusterID).consul", now: now)
        var config = CAConfiguration().updated(by: settings)
        config.fileSettingsHash = settings.digest
        return CAState(clusterID: clusterID, roots: [rootRecord(signer, clusterID: clusterID)], rootsIndex: 0,
                       config: config, signer: signer)
    }

    /// A fleet host's CA before it has seen the fleet's roots and its own intermediate: it
    /// serves no roots and signs nothing (leaf requests answer 503 with `reason`).
    public static func fleetPending(settings: CASettings, reason: String) -> CAState {
        var state = CAState(clusterID: "", roots: [], rootsIndex: 1, config: CAConfiguration().updated(by: settings), signer: nil)
        state.fleetManaged = true
        state.pendingReason = reason
        return state
    }

    /// The CA kept in the store, nil when none was ever created. A marker without usable roots
    /// is damage, never a reason to make a new CA: it throws ``CAError/corruptState(_:)``.
    public static func load(roots: StoredEntry?, config: StoredEntry?, marker: StoredEntry?) throws(CAError) -> CAState? {
        guard let roots else {
            guard marker != nil else { return nil }
            throw .corruptState("a certificate authority was created in this data_dir but state/ca/roots.json is missing")
        }
        let place = "state/ca/roots.json"
        guard case .string(let clusterID)? = roots.value["ClusterID"], case .array(let list)? = roots.value["Roots"] else {
            throw .corruptState("\(place): missing ClusterID or Roots")
        }
        var loaded: [CARoot] = []
        for item in list {
            guard let root = CARoot(stored: item) else { throw .corruptState("\(place): a root record is incomplete") }
            loaded.append(root)
        }
        guard let active = loaded.first(where: \.active), loaded.filter(\.active).count == 1 else {
            throw .corruptState("\(place): expected exactly one active root")
        }
        let signer: SigningIdentity
        do {
            signer = SigningIdentity(key: try KeyMaterial.privateKey(pem: active.privateKeyPEM),
                                     certificate: try KeyMaterial.certificate(pem: active.rootCertPEM))
        } catch {
            throw .corruptState("\(place): active root \(active.id): \(error)")
        }
        if let marker {
            guard case .string(let expected)? = marker.value["ClusterID"] else {
                throw .corruptState("state/agent/ca.json: missing ClusterID")
            }
            guard expected == clusterID else {
                throw .corruptState("\(place): holds cluster \(clusterID), but this data_dir's CA is cluster \(expected)")
            }
        }
        var configuration = CAConfiguration()
        if let config {
            guard let parsed = CAConfiguration(stored: config.value, createIndex: config.modRevision, modifyIndex: config.modRevision) else {
                throw .corruptState("state/ca/config.json: unreadable LeafCertTTL or RotationPeriod")
            }
            configuration = parsed
        }
        var state = CAState(clusterID: clusterID, roots: loaded, rootsIndex: roots.modRevision, config: configuration, signer: signer)
        state = state.stamped(revision: roots.modRevision, previous: state)
        return state
    }

    // MARK: - Configuration and rotation

    /// `state` with `settings` laid over its configuration; a new key (given and different, or
    /// `generate_key`) rotates the root: the new one is cross-signed by the old, which stays
    /// trusted until pruned. `fileDigest` marks settings from the config files (applied once).
    public static func applying(_ settings: CASettings, fileDigest: String?, to state: CAState,
                                now: Date) throws(CAError) -> (next: CAState, rotated: Bool) {
        guard !state.fleetManaged, let current = state.signer else {
            throw .invalid("in fleet mode the CA is the fleet's: its root is kept by the root holder, and rotating it across the fleet is not available yet")
        }
        var next = state
        next.config = state.config.updated(by: settings)
        if let fileDigest { next.config.fileSettingsHash = fileDigest }
        var rotate = settings.generateKey
        if let pem = settings.privateKey {
            let key = try parseKey(pem, place: fileDigest == nil ? "PrivateKey" : "connect.ca_config.private_key")
            rotate = rotate || key.publicKey.rawRepresentation != current.key.publicKey.rawRepresentation
        }
        if next.config != state.config { next.config.modifyIndex = 0 }
        guard rotate else { return (next, false) }
        var fresh = settings
        if settings.generateKey { fresh.privateKey = nil; fresh.rootCert = nil }
        let signer = try newSigner(settings: fresh, trustDomain: state.trustDomain, now: now)
        // The old root stays trusted until it is pruned; the cross-signature lives as long.
        let pruneAt = now.addingTimeInterval(2 * next.config.leafCertTTL.timeInterval)
        let cross: Certificate
        do {
            cross = try CertificateFactory.crossSign(signer.certificate, newKey: signer.key.publicKey, by: current,
                                                     serial: SerialNumbers.certificate(), trustDomain: state.trustDomain, now: now,
                                                     notAfter: pruneAt.addingTimeInterval(CertificateFactory.crossSignMargin))
        } catch {
            throw .invalid("cannot cross-sign the new root: \(error)")
        }
        let oldID = state.roots.first(where: \.active)?.id ?? ""
        var root = rootRecord(signer, clusterID: state.clusterID)
        root.intermediates = [ChainCertificate(pem: KeyMaterial.pem(cross), signedByRootID: oldID, notAfter: cross.notValidAfter)]
        for index in next.roots.indices where next.roots[index].active {
            next.roots[index].active = false
            next.roots[index].rotatedOutAt = now
            next.roots[index].modifyIndex = 0
        }
        next.roots.append(root)
        next.signer = signer
        return (next, true)
    }

    /// `state` with `connect.ca_config` from the config files applied, when they changed since
    /// they were last applied (start and reload); else `state` unchanged.
    public static func applyingFileSettings(_ settings: CASettings, to state: CAState,
                                            now: Date) throws(CAError) -> (next: CAState, rotated: Bool) {
        guard state.config.fileSettingsHash != settings.digest else { return (state, false) }
        if state.fleetManaged {
            // The fleet's root lives with its root holder; a host takes only the leaf settings.
            guard settings.privateKey == nil, settings.rootCert == nil else {
                throw .invalid("private_key and root_cert cannot be set in fleet mode: the fleet's root holder creates and keeps the root")
            }
            var next = state
            next.config = state.config.updated(by: settings)
            next.config.fileSettingsHash = settings.digest
            return (next, false)
        }
        return try applying(settings, fileDigest: settings.digest, to: state, now: now)
    }

    /// `state` without the roots rotated out more than 2 × leaf TTL ago (and the chain
    /// certificates they signed or that expired); nil when nothing is due.
    public static func pruned(_ state: CAState, now: Date) -> (next: CAState, removed: [String])? {
        let keep = 2 * state.config.leafCertTTL.timeInterval
        let gone = state.roots.filter { root in
            !root.active && (root.rotatedOutAt.map { now.timeIntervalSince($0) >= keep } ?? true)
        }.map(\.id)
        let expired = state.roots.contains { $0.intermediates.contains { $0.notAfter <= now } }
        guard !gone.isEmpty || expired else { return nil }
        var next = state
        next.roots.removeAll { gone.contains($0.id) }
        for index in next.roots.indices {
            let before = next.roots[index].intermediates.count
            next.roots[index].intermediates.removeAll { gone.contains($0.signedByRootID) || $0.notAfter <= now }
            if next.roots[index].intermediates.count != before { next.roots[index].modifyIndex = 0 }
        }
        return (next, gone)
    }

    // MARK: - Helpers

    static func parseKey(_ pem: String, place: String) throws(CAError) -> P256.Signing.PrivateKey {
        do throws(KeyMaterialError) {
            return try KeyMaterial.privateKey(pem: pem)
        } catch {
            throw .invalid("\(place): \(error)")
        }
    }

    /// A signing identity from `settings`: their key (and root cert, checked), or a new key.
    private static func newSigner(settings: CASettings, trustDomain: String, now: Date) throws(CAError) -> SigningIdentity {
        let key = try settings.privateKey.map { pem throws(CAError) in try parseKey(pem, place: "PrivateKey") } ?? P256.Signing.PrivateKey()
        if let pem = settings.rootCert {
            let certificate: Certificate
            do throws(KeyMaterialError) {
                certificate = try KeyMaterial.certificate(pem: pem)
            } catch {
                throw .invalid("RootCert: \(error)")
            }
            guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
                throw .invalid("RootCert: the certificate's public key does not match PrivateKey")
            }
            let uris = (try? certificate.extensions.subjectAlternativeNames)??.compactMap { name -> String? in
                if case .uniformResourceIdentifier(let uri) = name { return uri }
                return nil
            } ?? []
            guard uris.contains("spiffe://\(trustDomain)") else {
                throw .invalid("RootCert: its URI SAN must be spiffe://\(trustDomain)")
            }
            guard case .isCertificateAuthority? = (try? certificate.extensions.basicConstraints) ?? nil else {
                throw .invalid("RootCert: not a CA certificate (BasicConstraints CA:TRUE is missing)")
            }
            return SigningIdentity(key: key, certificate: certificate)
        }
        do {
            return SigningIdentity(key: key, certificate: try CertificateFactory.root(key: key, serial: SerialNumbers.root(),
                                                                                      trustDomain: trustDomain, now: now))
        } catch {
            throw .invalid("cannot create a root certificate: \(error)")
        }
    }

    /// The record of a new active root; its indexes are those of the write that stores it.
    private static func rootRecord(_ signer: SigningIdentity, clusterID: String) -> CARoot {
        let certificate = signer.certificate
        let serial = certificate.serialNumber.bytes.suffix(8).reduce(UInt64(0)) { ($0 << 8) | UInt64($1) }
        return CARoot(id: KeyMaterial.fingerprint(certificate), serialNumber: serial,
                      signingKeyID: ColonHex.encode(signer.keyID), externalTrustDomain: clusterID,
                      notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter,
                      rootCertPEM: KeyMaterial.pem(certificate), active: true, privateKeyPEM: KeyMaterial.sec1PEM(signer.key),
                      createIndex: 0, modifyIndex: 0)
    }
}
