// Fleet mode's chain of trust: one root (kept by its root holder, never in etcd) signs one
// intermediate per host from that host's CSR; the host signs leaves with its intermediate and
// hands out leaf + intermediate. These are the pure parts: CSRs, signing them, roots as
// published, and the CA state a host serves.

import ConnectdCore
import Crypto
import Foundation
import SwiftASN1
import X509

public enum IntermediateCA {
    /// An intermediate lives 7 days and is renewed at half-life.
    public static let defaultTTL: TimeInterval = 7 * 86400

    /// A PEM CSR for `key`, subject `CN=connectd intermediate <node>`.
    public static func request(key: P256.Signing.PrivateKey, node: String) throws(CAError) -> String {
        do {
            let csr = try CertificateSigningRequest(
                version: .v1, subject: try DistinguishedName { CommonName("connectd intermediate \(node)") },
                privateKey: Certificate.PrivateKey(key), attributes: CertificateSigningRequest.Attributes(),
                signatureAlgorithm: .ecdsaWithSHA256)
            return try csr.serializeAsPEM().pemString
        } catch {
            throw .invalid("cannot make a CSR: \(error)")
        }
    }

    /// The public key a PEM CSR asks to certify, once its signature checks out.
    public static func requestedKey(_ pem: String) throws(CAError) -> Certificate.PublicKey {
        do {
            let csr = try CertificateSigningRequest(pemEncoded: pem)
            guard csr.publicKey.isValidSignature(csr.signature, for: csr) else { throw CAError.invalid("the CSR's signature does not verify") }
            return csr.publicKey
        } catch let error as CAError {
            throw error
        } catch {
            throw .invalid("unreadable CSR: \(error)")
        }
    }

    /// Signs `key` (from a host's CSR) into an intermediate CA certificate for `node`: path
    /// length 0 (it signs leaves only), URI SAN `spiffe://<trust domain>`, valid for `ttl`.
    public static func sign(_ key: Certificate.PublicKey, node: String, by root: SigningIdentity, trustDomain: String,
                            ttl: TimeInterval = defaultTTL, now: Date) throws(CAError) -> Certificate {
        guard let p256 = P256.Signing.PublicKey(key) else { throw .invalid("the CSR's key is not a P-256 key") }
        do {
            return try Certificate(
                version: .v3, serialNumber: SerialNumbers.certificate(), publicKey: key,
                notValidBefore: now.addingTimeInterval(-CertificateFactory.backdate), notValidAfter: now.addingTimeInterval(ttl),
                issuer: root.certificate.subject,
                subject: try DistinguishedName { CommonName("connectd intermediate \(node)") },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                    SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://\(trustDomain)")])
                    SubjectKeyIdentifier(keyIdentifier: ArraySlice(KeyMaterial.keyID(p256)))
                    AuthorityKeyIdentifier(keyIdentifier: ArraySlice(root.keyID))
                },
                issuerPrivateKey: Certificate.PrivateKey(root.key))
        } catch {
            throw .invalid("cannot sign the intermediate for \(node): \(error)")
        }
    }

    /// A new root for a fleet: its identity and its record as published.
    public static func newRoot(clusterID: String, now: Date) throws(CAError) -> (SigningIdentity, CARoot) {
        let key = P256.Signing.PrivateKey()
        do {
            let certificate = try CertificateFactory.root(key: key, serial: SerialNumbers.root(), trustDomain: "\(clusterID).consul", now: now)
            let identity = SigningIdentity(key: key, certificate: certificate)
            return (identity, published(identity, clusterID: clusterID))
        } catch {
            throw .invalid("cannot create the fleet root: \(error)")
        }
    }

    /// A new root to rotate to from `current`: its identity, and its certificate cross-signed by
    /// `current` (so a host that still trusts only the old root accepts chains through the new
    /// one), valid for `crossSignLife`.
    public static func nextRoot(after current: SigningIdentity, clusterID: String, crossSignLife: TimeInterval,
                                now: Date) throws(CAError) -> (identity: SigningIdentity, crossSigned: Certificate) {
        let (identity, _) = try newRoot(clusterID: clusterID, now: now)
        do {
            let cross = try CertificateFactory.crossSign(identity.certificate, newKey: identity.key.publicKey, by: current,
                                                         serial: SerialNumbers.certificate(), trustDomain: "\(clusterID).consul",
                                                         now: now, notAfter: now.addingTimeInterval(crossSignLife))
            return (identity, cross)
        } catch {
            throw .invalid("cannot cross-sign the new fleet root: \(error)")
        }
    }

    /// The public record of `identity` as the active root of `clusterID` (no key).
    public static func published(_ identity: SigningIdentity, clusterID: String) -> CARoot {
        let certificate = identity.certificate
        let serial = certificate.serialNumber.bytes.suffix(8).reduce(UInt64(0)) { ($0 << 8) | UInt64($1) }
        return CARoot(id: KeyMaterial.fingerprint(certificate), serialNumber: serial, signingKeyID: ColonHex.encode(identity.keyID),
                      externalTrustDomain: clusterID, notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter,
                      rootCertPEM: KeyMaterial.pem(certificate), active: true, privateKeyPEM: "", createIndex: 0, modifyIndex: 0)
    }

    /// What a fleet host serves: the fleet's roots, and its intermediate (when it is one for
    /// `key`, chains to a root of the set and has not expired) as the signer; else no signer
    /// and the reason.
    public static func hostState(clusterID: String, roots: [CARoot], rootsIndex: UInt64, intermediatePEM: String?,
                                 key: P256.Signing.PrivateKey, now: Date) -> CAState {
        var state = CAState(clusterID: clusterID, roots: roots, rootsIndex: rootsIndex, config: CAConfiguration(), signer: nil)
        state.fleetManaged = true
        guard !roots.isEmpty else {
            state.pendingReason = "the fleet has no root yet (a host with fleet.root_holder creates it)"
            return state
        }
        guard let intermediatePEM, let certificate = try? KeyMaterial.certificate(pem: intermediatePEM) else {
            state.pendingReason = "waiting for the root holder to sign this host's intermediate (CSR posted under ca/csr/)"
            return state
        }
        guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
            state.pendingReason = "the intermediate in etcd is for another key; waiting for the root holder to sign this host's CSR"
            return state
        }
        guard certificate.notValidAfter > now else {
            state.pendingReason = "this host's intermediate expired at \(RFC3339.format(certificate.notValidAfter)); waiting for a renewal"
            return state
        }
        guard let issuer = roots.first(where: { root in
            (try? KeyMaterial.certificate(pem: root.rootCertPEM)).map { root in
                root.subject == certificate.issuer && root.publicKey.isValidSignature(certificate.signature, for: certificate)
            } ?? false
        }) else {
            state.pendingReason = "this host's intermediate is not signed by a root of the fleet"
            return state
        }
        state.signerRootID = issuer.id
        state.signer = SigningIdentity(key: key, certificate: certificate)
        state.leafChain = [KeyMaterial.pem(certificate)]
        return state
    }

    /// Whether an intermediate is due for a new one: past half its life, or for another key.
    public static func needsRenewal(_ pem: String, for key: Certificate.PublicKey, activeRoot: CARoot, now: Date) -> Bool {
        guard let certificate = try? KeyMaterial.certificate(pem: pem), certificate.publicKey == key,
              let root = try? KeyMaterial.certificate(pem: activeRoot.rootCertPEM),
              root.publicKey.isValidSignature(certificate.signature, for: certificate) else { return true }
        let half = certificate.notValidBefore.addingTimeInterval(certificate.notValidAfter.timeIntervalSince(certificate.notValidBefore) / 2)
        return now >= half
    }
}

extension CARoot {
    /// The record as published in etcd: the API fields without indexes (cross-signatures with
    /// the root that signed them), never a key.
    public var publishedJSON: JSONValue {
        var members = apiJSON.objectMembers!.filter { !["CreateIndex", "ModifyIndex", "IntermediateCerts"].contains($0.0) }
        members.append(("CrossSigned", .array(intermediates.map { chain in
            .object([("PEM", .string(chain.pem)), ("SignedByRootID", .string(chain.signedByRootID)),
                     ("NotAfter", .string(RFC3339.format(chain.notAfter)))])
        })))
        members.append(("RotatedOutAt", rotatedOutAt.map { .string(RFC3339.format($0)) } ?? .null))
        return .object(members)
    }

    /// A root read from etcd; its indexes are the revision of the record holding it.
    public init?(published json: JSONValue, index: UInt64) {
        guard case .string(let id)? = json["ID"], case .int(let serial)? = json["SerialNumber"],
              case .string(let keyID)? = json["SigningKeyID"], case .string(let external)? = json["ExternalTrustDomain"],
              let notBefore = json["NotBefore"]?.stringValue.flatMap(RFC3339.parse),
              let notAfter = json["NotAfter"]?.stringValue.flatMap(RFC3339.parse),
              case .string(let pem)? = json["RootCert"], case .bool(let active)? = json["Active"] else { return nil }
        self.init(id: id, serialNumber: UInt64(bitPattern: serial), signingKeyID: keyID, externalTrustDomain: external,
                  notBefore: notBefore, notAfter: notAfter, rootCertPEM: pem, active: active, privateKeyPEM: "",
                  createIndex: index, modifyIndex: index)
        rotatedOutAt = json["RotatedOutAt"]?.stringValue.flatMap(RFC3339.parse)
        if case .array(let chains)? = json["CrossSigned"] {
            intermediates = chains.compactMap { chain in
                guard case .string(let pem)? = chain["PEM"], case .string(let signer)? = chain["SignedByRootID"],
                      let notAfter = chain["NotAfter"]?.stringValue.flatMap(RFC3339.parse) else { return nil }
                return ChainCertificate(pem: pem, signedByRootID: signer, notAfter: notAfter)
            }
        }
    }
}
