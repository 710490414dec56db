// CertificateAuthority: the built-in CA. It owns the roots (keys, cross-signs, pruning), signing
// of leaf certificates, and the per-(service, token) leaf cache with its renewal. It persists
// through AgentStore's DurableStore and must not touch HTTP or processes.
//
// The CA: its roots and keys, configuration, serial counter; signing, rotation and pruning.
// Reads are lock-and-copy (no await) so roots and signing serve from memory; every change is
// committed to the durable store before it is published, so a failed write changes nothing.

import AgentConfig
import AgentState
import AgentStore
import ConnectdCore
import Crypto
import Foundation
import Logging
import Synchronization
import X509

public final class CertificateAuthority: Sendable {
    /// Serials are reserved in blocks so signing does not write to disk each time; a restart
    /// continues after the reserved block, so serials stay unique and increasing.
    static let serialBlock: UInt64 = 1000

    private struct State {
        var clusterID: String
        var roots: [CARoot]
        var rootsIndex: UInt64
        var rootsRevision: UInt64?
        var config: CAConfiguration
        var configRevision: UInt64?
        var signer: SigningIdentity
        var nextSerial: UInt64
        var serialCeiling: UInt64
        var serialRevision: UInt64?
        var trustDomain: String { "\(clusterID).consul" }
    }

    private let store: any DurableStore
    private let state: Mutex<State>
    private let logger: Logger
    /// Parks roots watchers; its index is the roots' modify revision.
    public let rootsWatch: IndexWatch

    // MARK: - Opening

    /// Loads the CA from `store`, or creates it (cluster ID, first root) with `settings`; then
    /// applies `settings` if they changed since they were last applied.
    public init(store: any DurableStore, settings: CASettings, logger: Logger, now: Date = Date()) throws(CAError) {
        self.store = store
        self.logger = logger
        let entries: [String: StoredEntry]
        do throws(StoreError) {
            entries = Dictionary(uniqueKeysWithValues: try store.list(prefix: "ca/").map { ($0.key, $0) })
        } catch {
            throw .corruptState("cannot read CA state: \(error)")
        }
        var loaded: State
        if let rootsEntry = entries["ca/roots"] {
            loaded = try Self.load(rootsEntry, config: entries["ca/config"], serial: entries["ca/serial"])
        } else {
            loaded = try Self.bootstrap(store: store, settings: settings, now: now)
            logger.info("created the certificate authority", metadata: [
                "trust_domain": "\(loaded.trustDomain)", "root": "\(loaded.roots[0].id)"])
        }
        state = Mutex(loaded)
        rootsWatch = IndexWatch(index: loaded.rootsIndex)
        if loaded.config.fileSettingsHash != settings.digest {
            try applyFileSettings(settings, now: now)
        }
    }

    private static func load(_ rootsEntry: StoredEntry, config: StoredEntry?, serial: StoredEntry?) throws(CAError) -> State {
        let place = "state ca/roots"
        guard case .string(let clusterID)? = rootsEntry.value["ClusterID"], case .array(let list)? = rootsEntry.value["Roots"] else {
            throw .corruptState("\(place): missing ClusterID or Roots; move the file away to create a new CA")
        }
        var roots: [CARoot] = []
        for item in list {
            guard var root = CARoot(stored: item) else {
                throw .corruptState("\(place): a root record is incomplete; move the file away to create a new CA")
            }
            // 0 marks an index the write that stored it did not know yet: that write's revision.
            if root.createIndex == 0 { root.createIndex = rootsEntry.modRevision }
            if root.modifyIndex == 0 { root.modifyIndex = rootsEntry.modRevision }
            roots.append(root)
        }
        guard let active = roots.first(where: \.active), roots.filter(\.active).count == 1 else {
            throw .corruptState("\(place): expected exactly one active root")
        }
        let signer: SigningIdentity
        do {
            signer = SigningIdentity(key: try KeyMaterial.privateKey(pem: active.privateKeyPEM),
                                     certificate: try KeyMaterial.certificate(pem: active.rootCertPEM))
        } catch {
            throw .corruptState("\(place): active root \(active.id): \(error)")
        }
        var configuration = CAConfiguration()
        if let config {
            guard let parsed = CAConfiguration(stored: config.value, createIndex: config.modRevision, modifyIndex: config.modRevision) else {
                throw .corruptState("state ca/config: unreadable LeafCertTTL or RotationPeriod")
            }
            configuration = parsed
        }
        var ceiling: UInt64 = (roots.map(\.serialNumber).max() ?? 0) + 1
        if let serial, case .int(let stored)? = serial.value["Ceiling"], stored > 0 { ceiling = max(ceiling, UInt64(stored)) }
        return State(clusterID: clusterID, roots: roots, rootsIndex: rootsEntry.modRevision, rootsRevision: rootsEntry.modRevision,
                     config: configuration, configRevision: config?.modRevision, signer: signer,
                     nextSerial: ceiling, serialCeiling: ceiling, serialRevision: serial?.modRevision)
    }

    private static func bootstrap(store: any DurableStore, settings: CASettings, now: Date) throws(CAError) -> State {
        let clusterID = settings.clusterID ?? UUID().uuidString.lowercased()
        let serial: UInt64 = 1
        let (signer, _) = try newSigner(settings: settings, serial: serial, trustDomain: "\(clusterID).consul", now: now)
        var root = rootRecord(signer, serial: serial, clusterID: clusterID, index: 0)
        var config = CAConfiguration().updated(by: settings)
        config.fileSettingsHash = settings.digest
        let ceiling = serial + 1 + serialBlock
        let revision: UInt64
        do throws(StoreError) {
            revision = try store.commit([
                .put(key: "ca/roots", value: rootsJSON(clusterID, [root])),
                .put(key: "ca/config", value: config.storedJSON),
                .put(key: "ca/serial", value: .object([("Ceiling", .int(Int64(ceiling)))])),
            ])
        } catch {
            throw .persistence("\(error)")
        }
        root.createIndex = revision
        root.modifyIndex = revision
        config.createIndex = revision
        config.modifyIndex = revision
        return State(clusterID: clusterID, roots: [root], rootsIndex: revision, rootsRevision: revision, config: config,
                     configRevision: revision, signer: signer, nextSerial: serial + 1, serialCeiling: ceiling, serialRevision: revision)
    }

    // MARK: - Reading

    public var trustDomain: String { state.withLock { $0.trustDomain } }

    public var roots: RootsView {
        state.withLock { state in
            RootsView(trustDomain: state.trustDomain, activeRootID: state.roots.first(where: \.active)?.id ?? "",
                      roots: state.roots, index: state.rootsIndex)
        }
    }

    public var configuration: CAConfiguration { state.withLock { $0.config } }

    /// Colon-hex key ID of the active root (leaves signed by another key are stale).
    public var activeSigningKeyID: String { state.withLock { ColonHex.encode($0.signer.keyID) } }

    // MARK: - Signing

    /// Signs a new leaf for `service` in `datacenter` with a fresh key and the next serial.
    public func issueLeaf(service: String, datacenter: String, now: Date = Date()) throws(CAError) -> IssuedCert {
        let (serial, signer, chain, ttl, trustDomain) = try state.withLock { state throws(CAError) in
            let serial = try reserveSerial(&state)
            let chain = state.roots.first(where: \.active)?.intermediates.map(\.pem) ?? []
            return (serial, state.signer, chain, state.config.leafCertTTL, state.trustDomain)
        }
        let uri = SpiffeID.serviceURI(trustDomain: trustDomain, datacenter: datacenter, service: service)
        let leaf: (certificate: Certificate, key: P256.Signing.PrivateKey)
        do {
            leaf = try CertificateFactory.leaf(commonName: service, uri: uri, serial: serial, ttl: ttl.timeInterval,
                                               signer: signer, now: now)
        } catch {
            throw .invalid("cannot sign a certificate for \"\(service)\": \(error)")
        }
        var pem = KeyMaterial.pem(leaf.certificate)
        for extra in chain {
            pem = pem.trimmingCharacters(in: .whitespacesAndNewlines) + "\n" + extra
        }
        return IssuedCert(serialNumber: serial, certPEM: pem, privateKeyPEM: KeyMaterial.sec1PEM(leaf.key), service: service,
                          serviceURI: uri, validAfter: leaf.certificate.notValidBefore, validBefore: leaf.certificate.notValidAfter,
                          authorityKeyID: ColonHex.encode(signer.keyID))
    }

    /// The next serial; reserves (and persists) a new block when the current one is used up.
    private func reserveSerial(_ state: inout State) throws(CAError) -> UInt64 {
        if state.nextSerial >= state.serialCeiling {
            let ceiling = state.nextSerial + Self.serialBlock
            do throws(StoreError) {
                state.serialRevision = try store.commit([.put(key: "ca/serial", value: .object([("Ceiling", .int(Int64(ceiling)))]))],
                                                        expect: ["ca/serial": state.serialRevision])
            } catch {
                throw .persistence("\(error)")
            }
            state.serialCeiling = ceiling
        }
        defer { state.nextSerial += 1 }
        return state.nextSerial
    }

    // MARK: - Configuration and rotation

    /// Applies `connect.ca_config` from the agent's files (at start and on reload, when changed).
    public func applyFileSettings(_ settings: CASettings, now: Date = Date()) throws(CAError) {
        guard state.withLock({ $0.config.fileSettingsHash }) != settings.digest else { return }
        _ = try apply(settings, fileDigest: settings.digest, now: now)
    }

    /// `PUT /v1/connect/ca/configuration`: updates the settings; a new key (given, or
    /// `generate_key`) rotates the root. Returns true when the root was rotated.
    @discardableResult
    public func applyConfiguration(_ settings: CASettings, now: Date = Date()) throws(CAError) -> Bool {
        try apply(settings, fileDigest: nil, now: now)
    }

    private func apply(_ settings: CASettings, fileDigest: String?, now: Date) throws(CAError) -> Bool {
        let (rotated, newRoot) = try state.withLock { state throws(CAError) -> (Bool, CARoot?) in
            var next = state
            next.config = state.config.updated(by: settings)
            if let fileDigest { next.config.fileSettingsHash = fileDigest }
            var rotate = settings.generateKey
            if let pem = settings.privateKey {
                let key = try Self.parseKey(pem, place: fileDigest == nil ? "PrivateKey" : "connect.ca_config.private_key")
                rotate = rotate || key.publicKey.rawRepresentation != state.signer.key.publicKey.rawRepresentation
            }
            var operations: [StoreOperation] = [.put(key: "ca/config", value: next.config.storedJSON)]
            var expect: [String: UInt64?] = ["ca/config": state.configRevision]
            var newRoot: CARoot?
            if rotate {
                let rootSerial = try reserveSerial(&next)
                let crossSerial = try reserveSerial(&next)
                var fresh = settings
                if settings.generateKey { fresh.privateKey = nil; fresh.rootCert = nil }
                let (signer, _) = try Self.newSigner(settings: fresh, serial: rootSerial, trustDomain: state.trustDomain, now: now)
                // The old root stays trusted until it is pruned; the cross-signature lives as long.
                let pruneAt = now.addingTimeInterval(2 * next.config.leafCertTTL.timeInterval)
                let cross: Certificate
                do {
                    cross = try CertificateFactory.crossSign(signer.certificate, newKey: signer.key.publicKey, by: state.signer,
                                                             serial: crossSerial, trustDomain: state.trustDomain, now: now,
                                                             notAfter: pruneAt.addingTimeInterval(CertificateFactory.crossSignMargin))
                } catch {
                    throw .invalid("cannot cross-sign the new root: \(error)")
                }
                let oldID = state.roots.first(where: \.active)?.id ?? ""
                var root = Self.rootRecord(signer, serial: rootSerial, clusterID: state.clusterID, index: 0)
                root.intermediates = [ChainCertificate(pem: KeyMaterial.pem(cross), signedByRootID: oldID, notAfter: cross.notValidAfter)]
                for index in next.roots.indices where next.roots[index].active {
                    next.roots[index].active = false
                    next.roots[index].rotatedOutAt = now
                    next.roots[index].modifyIndex = 0
                }
                next.roots.append(root)
                next.signer = signer
                newRoot = root
                operations.append(.put(key: "ca/roots", value: Self.rootsJSON(state.clusterID, next.roots)))
                expect["ca/roots"] = state.rootsRevision
            }
            if next.serialCeiling != state.serialCeiling {
                operations.append(.put(key: "ca/serial", value: .object([("Ceiling", .int(Int64(next.serialCeiling)))])))
            }
            // reserveSerial may already have committed ca/serial; commit the rest as one revision.
            let revision: UInt64
            do throws(StoreError) {
                revision = try store.commit(operations, expect: expect)
            } catch {
                throw .persistence("\(error)")
            }
            next.config.modifyIndex = revision
            next.configRevision = revision
            if next.config.createIndex == 0 { next.config.createIndex = revision }
            if rotate {
                for index in next.roots.indices {
                    if next.roots[index].createIndex == 0 { next.roots[index].createIndex = revision }
                    if next.roots[index].modifyIndex == 0 { next.roots[index].modifyIndex = revision }
                }
                next.rootsIndex = revision
                next.rootsRevision = revision
                if next.serialCeiling != state.serialCeiling { next.serialRevision = revision }
            } else if next.serialCeiling != state.serialCeiling {
                next.serialRevision = revision
            }
            state = next
            return (rotate, newRoot)
        }
        if rotated, let newRoot {
            logger.info("rotated the CA root", metadata: ["root": "\(newRoot.id)", "serial": "\(newRoot.serialNumber)"])
            rootsWatch.advance(to: roots.index)
        }
        return rotated
    }

    /// Removes roots rotated out more than 2 × leaf TTL ago, with the chain certificates they
    /// signed. Returns the next time something is due, if anything is.
    @discardableResult
    public func prune(now: Date = Date()) throws(CAError) -> Date? {
        let changed = try state.withLock { state throws(CAError) -> Bool in
            let keep = 2 * state.config.leafCertTTL.timeInterval
            let pruned = state.roots.filter { root in
                !root.active && (root.rotatedOutAt.map { now.timeIntervalSince($0) >= keep } ?? true)
            }
            let expired = state.roots.contains { $0.intermediates.contains { $0.notAfter <= now } }
            guard !pruned.isEmpty || expired else { return false }
            let gone = Set(pruned.map(\.id))
            var roots = state.roots.filter { !gone.contains($0.id) }
            for index in roots.indices {
                roots[index].intermediates.removeAll { gone.contains($0.signedByRootID) || $0.notAfter <= now }
            }
            let revision: UInt64
            do throws(StoreError) {
                revision = try store.commit([.put(key: "ca/roots", value: Self.rootsJSON(state.clusterID, roots))],
                                            expect: ["ca/roots": state.rootsRevision])
            } catch {
                throw .persistence("\(error)")
            }
            for root in pruned { logger.info("pruned rotated-out CA root", metadata: ["root": "\(root.id)"]) }
            state.roots = roots
            state.rootsIndex = revision
            state.rootsRevision = revision
            return true
        }
        if changed { rootsWatch.advance(to: roots.index) }
        return nextPrune
    }

    /// When the next rotated-out root is due for pruning, if any.
    public var nextPrune: Date? {
        state.withLock { state in
            let keep = 2 * state.config.leafCertTTL.timeInterval
            return state.roots.compactMap { $0.rotatedOutAt?.addingTimeInterval(keep) }.min()
        }
    }

    // MARK: - Helpers

    private static func parseKey(_ pem: String, place: String) throws(CAError) -> P256.Signing.PrivateKey {
        do throws(KeyMaterialError) {
            return try KeyMaterial.privateKey(pem: pem)
        } catch {
            throw .invalid("\(place): \(error)")
        }
    }

    /// A signing identity from `settings`: their key (and root cert, checked), or a new key.
    private static func newSigner(settings: CASettings, serial: UInt64, trustDomain: String,
                                  now: Date) throws(CAError) -> (SigningIdentity, generated: Bool) {
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
            return (SigningIdentity(key: key, certificate: certificate), false)
        }
        do {
            return (SigningIdentity(key: key, certificate: try CertificateFactory.root(key: key, serial: serial, trustDomain: trustDomain, now: now)),
                    settings.privateKey == nil)
        } catch {
            throw .invalid("cannot create a root certificate: \(error)")
        }
    }

    private static func rootRecord(_ signer: SigningIdentity, serial: UInt64, clusterID: String, index: UInt64) -> CARoot {
        let certificate = signer.certificate
        let serialNumber = certificate.serialNumber.bytes.reduce(UInt64(0)) { ($0 << 8) | UInt64($1) }
        return CARoot(id: KeyMaterial.fingerprint(certificate), serialNumber: serialNumber == 0 ? serial : serialNumber,
                      signingKeyID: ColonHex.encode(signer.keyID), externalTrustDomain: clusterID,
                      notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter,
                      rootCertPEM: KeyMaterial.pem(certificate), active: true, privateKeyPEM: KeyMaterial.sec1PEM(signer.key),
                      createIndex: index, modifyIndex: index)
    }

    private static func rootsJSON(_ clusterID: String, _ roots: [CARoot]) -> JSONValue {
        .object([("ClusterID", .string(clusterID)), ("Roots", .array(roots.map(\.storedJSON)))])
    }
}
