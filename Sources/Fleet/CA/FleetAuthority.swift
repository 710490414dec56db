// This host's part in the fleet's CA. Every host keeps an intermediate key on its own disk
// (`<data_dir>/fleet/intermediate-key.pem`, 0600), posts a CSR for it under `ca/csr/<node>`, and
// signs leaves once the root holder's signature is under `ca/intermediates/<node>`. A root holder
// also keeps the root (`<data_dir>/fleet/root.json`, never in etcd), creates `ca/roots` when the
// prefix has none (a create-only transaction, so two holders cannot both win), and signs every
// host's CSR, again at half-life.

import AgentStore
import CertificateAuthority
import ConnectdCore
import Crypto
import EtcdClient
import Foundation
import Logging
import X509

public actor FleetAuthority {
    let client: EtcdClient
    let keys: FleetKeys
    let node: String
    let directory: String
    let rootHolder: Bool
    private let clusterIDSetting: String?
    let logger: Logger
    public nonisolated let hostKey: P256.Signing.PrivateKey
    /// The root this holder signs with: of the keys it keeps, the one whose root is active.
    var root: (identity: SigningIdentity, clusterID: String)?
    /// Every root key this holder keeps (the active one, and one it rotated to or from).
    var kept: [SigningIdentity] = []
    let leavesCurrent: @Sendable () -> Bool
    private var warned: Set<String> = []
    /// Intermediates this holder wrote that the view may not show yet: node → (key, when).
    private var signed: [String: (key: Certificate.PublicKey, rootID: String, at: Date)] = [:]
    /// This host's own CSR and acknowledgement writes until the view shows them.
    var pending = PendingWrites()

    /// - Parameter leavesCurrent: whether every cached leaf is signed by the current signer (a
    ///   host acknowledges a new root only once its leaves carry the new chain).
    public init(client: EtcdClient, keys: FleetKeys, node: String, directory: String, rootHolder: Bool, clusterID: String?,
                leavesCurrent: @escaping @Sendable () -> Bool = { true }, logger: Logger) throws {
        self.leavesCurrent = leavesCurrent
        self.client = client
        self.keys = keys
        self.node = node
        self.directory = directory
        self.rootHolder = rootHolder
        self.clusterIDSetting = clusterID
        self.logger = logger
        hostKey = try Self.loadOrCreateKey(directory + "/intermediate-key.pem")
        if rootHolder, let loaded = try Self.loadRoots(directory + "/root.json") {
            kept = loaded.keys
            root = loaded.keys.last.map { ($0, loaded.clusterID) }
        }
    }

    // MARK: - What the host serves

    /// The CA this host serves from `view`: the fleet's roots, and its intermediate as signer.
    public nonisolated func caState(_ view: FleetView, now: Date = Date()) -> CAState {
        let published = Self.roots(view)
        let intermediate = view.entries[FleetKeys.intermediate(node)].flatMap { IntermediateRecord.decode($0.value) }
        var state = IntermediateCA.hostState(clusterID: published?.clusterID ?? "", roots: published?.roots ?? [],
                                        // Moves with the roots and with this host's intermediate (its signer).
                                        rootsIndex: UInt64(max(1, view.entries[FleetKeys.roots]?.modRevision ?? 1,
                                                               view.entries[FleetKeys.intermediate(node)]?.modRevision ?? 1)),
                                        intermediatePEM: intermediate?.certPEM, key: hostKey, now: now)
        if state.signer == nil, view.removal(of: node) != nil {
            state.pendingReason = "this host was removed from the fleet (connectd fleet remove-host); it gets no intermediate"
        }
        return state
    }

    static func roots(_ view: FleetView) -> (clusterID: String, roots: [CARoot])? {
        guard let entry = view.entries[FleetKeys.roots], let json = try? JSONParser.parse(Array(entry.value)),
              case .string(let clusterID)? = json["ClusterID"], case .array(let list)? = json["Roots"] else { return nil }
        let roots = list.compactMap { CARoot(published: $0, index: UInt64(entry.modRevision)) }
        return roots.isEmpty ? nil : (clusterID, roots)
    }

    // MARK: - Keeping it current

    /// One round against `view`: the root holder publishes the root and signs what is due;
    /// every host makes sure its CSR is posted.
    public func reconcile(_ view: FleetView, now: Date = Date()) async {
        do throws(EtcdError) {
            if rootHolder {
                try await holdRoot(view, now: now)
                try await pruneRoots(view, now: now)
            }
            try await postRequest(view)
            try await acknowledge(view)
        } catch {
            note("etcd", "fleet CA: etcd call failed; retrying", error: "\(error)")
        }
    }

    private func postRequest(_ view: FleetView) async throws(EtcdError) {
        if let removal = view.removal(of: node) {
            note("self-removed", "this host was removed from the fleet (connectd fleet remove-host): it gets no intermediate and publishes nothing",
                 error: "removed at \(removal["RemovedAt"]?.stringValue ?? "?") by \(removal["RemovedBy"]?.stringValue ?? "?")")
            return
        }
        let mine = Certificate.PublicKey(hostKey.publicKey)
        if pending.awaiting(FleetKeys.csr(node), in: view) { return }
        if let posted = view.entries[FleetKeys.csr(node)].flatMap({ RequestRecord.decode($0.value) }),
           (try? IntermediateCA.requestedKey(posted.csrPEM)) == mine {
            return
        }
        let pem: String
        do throws(CAError) {
            pem = try IntermediateCA.request(key: hostKey, node: node)
        } catch {
            note("csr", "fleet CA: cannot make this host's CSR", error: "\(error)")
            return
        }
        let record = RequestRecord(node: node, csrPEM: pem, requestedAt: RFC3339.format(Date()))
        let written = try await client.put(PutRequest(key: keys.full(FleetKeys.csr(node)), value: record.encoded))
        pending.wrote(FleetKeys.csr(node), at: written.header?.revision?.value)
        logger.info("fleet CA: posted this host's CSR", metadata: ["node": "\(node)"])
    }

    private func holdRoot(_ view: FleetView, now: Date) async throws(EtcdError) {
        guard let published = Self.roots(view) else {
            try await createRoot(now: now)
            return
        }
        if let active = published.roots.first(where: \.active),
           let match = kept.first(where: { KeyMaterial.pem($0.certificate) == active.rootCertPEM }) {
            root = (match, published.clusterID)
        }
        guard let root, let active = published.roots.first(where: \.active),
              active.rootCertPEM == KeyMaterial.pem(root.identity.certificate) else {
            note("not-holder", "fleet CA: the fleet's active root is not the one this root holder keeps; it signs nothing",
                 error: "active root \(published.roots.first(where: \.active)?.id ?? "none")")
            return
        }
        for (key, entry) in view.entries(under: "ca/csr/") {
            guard let request = RequestRecord.decode(entry.value) else { continue }
            if view.removal(of: request.node) != nil {
                note("removed:\(request.node)", "fleet CA: refusing the CSR of a removed host", error: "\(request.node) is under removed/")
                continue
            }
            let requested: Certificate.PublicKey
            do throws(CAError) {
                requested = try IntermediateCA.requestedKey(request.csrPEM)
            } catch {
                note("csr:\(key)", "fleet CA: refusing a CSR", error: "\(key): \(error)")
                continue
            }
            let existing = view.entries[FleetKeys.intermediate(request.node)].flatMap { IntermediateRecord.decode($0.value) }
            if let existing, !IntermediateCA.needsRenewal(existing.certPEM, for: requested, activeRoot: active, now: now) { continue }
            // Written a moment ago and not back through the watch yet: not again.
            if let recent = signed[request.node], recent.key == requested, recent.rootID == active.id,
               now.timeIntervalSince(recent.at) < 30 { continue }
            let certificate: Certificate
            do throws(CAError) {
                certificate = try IntermediateCA.sign(requested, node: request.node, by: root.identity,
                                                      trustDomain: "\(root.clusterID).consul", now: now)
            } catch {
                note("sign:\(key)", "fleet CA: cannot sign an intermediate", error: "\(error)")
                continue
            }
            let record = IntermediateRecord(node: request.node, certPEM: KeyMaterial.pem(certificate), rootID: active.id,
                                            notAfter: RFC3339.format(certificate.notValidAfter))
            // Noted before the write: a reconcile that runs while this one waits must not sign again.
            signed[request.node] = (requested, active.id, now)
            do throws(EtcdError) {
                _ = try await client.put(PutRequest(key: keys.full(FleetKeys.intermediate(request.node)), value: record.encoded))
            } catch {
                signed.removeValue(forKey: request.node)
                throw error
            }
            logger.info("fleet CA: signed an intermediate", metadata: [
                "node": "\(request.node)", "not_after": "\(record.notAfter)", "renewal": "\(existing != nil)"])
        }
    }

    /// The first root holder to find the prefix empty creates the root; the others lose the
    /// create-only transaction and keep theirs to themselves.
    private func createRoot(now: Date) async throws(EtcdError) {
        if root == nil {
            let clusterID = clusterIDSetting ?? UUID().uuidString.lowercased()
            do {
                let (identity, _) = try IntermediateCA.newRoot(clusterID: clusterID, now: now)
                try Self.saveRoots([identity], clusterID: clusterID, to: directory + "/root.json")
                root = (identity, clusterID)
                kept = [identity]
            } catch {
                note("root", "fleet CA: cannot create the root", error: "\(error)")
                return
            }
        }
        guard let root else { return }
        let record = IntermediateCA.published(root.identity, clusterID: root.clusterID)
        let value = JSONValue.object([("ClusterID", .string(root.clusterID)), ("TrustDomain", .string("\(root.clusterID).consul")),
                                      ("Roots", .array([record.publishedJSON]))])
        let key = keys.full(FleetKeys.roots)
        let response = try await client.txn(TxnRequest(compare: [.absent(key)],
                                                       success: [.put(PutRequest(key: key, value: Data(value.encoded().utf8)))]))
        if response.applied {
            logger.info("fleet CA: created the fleet's root", metadata: ["root": "\(record.id)", "trust_domain": "\(root.clusterID).consul"])
        }
        // Else the root exists already (another holder's, or this one's from a round still
        // waiting): the next round compares it with this holder's and says so if it differs.
    }

    func note(_ topic: String, _ message: Logger.Message, error: String) {
        guard warned.insert(topic + error).inserted else { return }
        logger.warning(message, metadata: ["error": "\(error)"])
    }

    // MARK: - Files

    static func loadOrCreateKey(_ path: String) throws -> P256.Signing.PrivateKey {
        if FileManager.default.fileExists(atPath: path) {
            let text = String(decoding: try AtomicFile.read(path), as: UTF8.self)
            do {
                return try KeyMaterial.privateKey(pem: text)
            } catch {
                throw StoreError(key: path, message: "\(error) (move it aside to make a new one; the root holder then signs the new key)")
            }
        }
        let key = P256.Signing.PrivateKey()
        try AtomicFile.write(Array(KeyMaterial.sec1PEM(key).utf8), to: path)
        return key
    }

    /// `root.json`: the cluster ID and every root key this holder keeps (`Roots`, oldest first).
    static func loadRoots(_ path: String) throws -> (keys: [SigningIdentity], clusterID: String)? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let json = try JSONParser.parse(try AtomicFile.read(path))
        guard case .string(let clusterID)? = json["ClusterID"], case .array(let list)? = json["Roots"], !list.isEmpty else {
            throw StoreError(key: path, message: "expected ClusterID and Roots")
        }
        var keys: [SigningIdentity] = []
        for item in list {
            guard case .string(let keyPEM)? = item["PrivateKey"], case .string(let certPEM)? = item["RootCert"] else {
                throw StoreError(key: path, message: "a root without PrivateKey or RootCert")
            }
            keys.append(SigningIdentity(key: try KeyMaterial.privateKey(pem: keyPEM), certificate: try KeyMaterial.certificate(pem: certPEM)))
        }
        return (keys, clusterID)
    }

    static func saveRoots(_ keys: [SigningIdentity], clusterID: String, to path: String) throws {
        let json = JSONValue.object([("ClusterID", .string(clusterID)), ("Roots", .array(keys.map { identity in
            .object([("RootCert", .string(KeyMaterial.pem(identity.certificate))), ("PrivateKey", .string(KeyMaterial.sec1PEM(identity.key)))])
        }))])
        try AtomicFile.write(Array(json.encoded(pretty: true).utf8), to: path)
    }
}

/// `ca/csr/<node>`.
struct RequestRecord: Codable {
    var node: String
    var csrPEM: String
    var requestedAt: String
    enum CodingKeys: String, CodingKey { case node = "Node", csrPEM = "CSR", requestedAt = "RequestedAt" }
    var encoded: Data { (try? JSONEncoder().encode(self)) ?? Data() }
    static func decode(_ data: Data) -> RequestRecord? { try? JSONDecoder().decode(RequestRecord.self, from: data) }
}

/// `ca/intermediates/<node>`.
struct IntermediateRecord: Codable {
    var node: String
    var certPEM: String
    var rootID: String
    var notAfter: String
    enum CodingKeys: String, CodingKey { case node = "Node", certPEM = "CertPEM", rootID = "RootID", notAfter = "NotAfter" }
    var encoded: Data { (try? JSONEncoder().encode(self)) ?? Data() }
    static func decode(_ data: Data) -> IntermediateRecord? { try? JSONDecoder().decode(IntermediateRecord.self, from: data) }
}
