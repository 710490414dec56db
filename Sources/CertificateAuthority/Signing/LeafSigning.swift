// Signing a leaf certificate from a CA state: a pure function of the state, so it needs no lock
// and never waits for a rotation.

import ConnectdCore
import Crypto
import Foundation
import X509

extension CAPolicy {
    /// A new leaf for `service` in `datacenter`, signed by the active root, with a fresh key and
    /// a random serial; `index` is the cache's issue index for it.
    public static func issueLeaf(_ state: CAState, service: String, datacenter: String, index: UInt64,
                                 now: Date = Date()) throws(CAError) -> IssuedCert {
        guard let signer = state.signer else { throw .unavailable(state.pendingReason) }
        // A leaf never outlives the certificate that signed it (a fleet host's intermediate).
        let ttl = min(state.config.leafCertTTL.timeInterval, signer.certificate.notValidAfter.timeIntervalSince(now))
        guard ttl > 0 else { throw .unavailable("the signing certificate expired at \(RFC3339.format(signer.certificate.notValidAfter))") }
        let uri = SpiffeID.serviceURI(trustDomain: state.trustDomain, datacenter: datacenter, service: service)
        let leaf: (certificate: Certificate, key: P256.Signing.PrivateKey)
        do {
            leaf = try CertificateFactory.leaf(commonName: service, uri: uri, serial: SerialNumbers.certificate(),
                                               ttl: ttl, signer: signer, now: now)
        } catch {
            throw .invalid("cannot sign a certificate for \"\(service)\": \(error)")
        }
        var pem = KeyMaterial.pem(leaf.certificate)
        for extra in state.leafChain + (state.roots.first(where: \.active)?.intermediates.map(\.pem) ?? []) {
            pem = pem.trimmingCharacters(in: .whitespacesAndNewlines) + "\n" + extra
        }
        return IssuedCert(serial: Array(leaf.certificate.serialNumber.bytes), index: index, certPEM: pem,
                          privateKeyPEM: KeyMaterial.sec1PEM(leaf.key), service: service, serviceURI: uri,
                          validAfter: leaf.certificate.notValidBefore, validBefore: leaf.certificate.notValidAfter,
                          authorityKeyID: state.activeSigningKeyID)
    }
}
