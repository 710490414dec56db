// Builds the three kinds of certificate the CA makes: a self-signed root, a leaf for a service,
// and the cross-signature of a new root by the old root's key.

import Crypto
import Foundation
import SwiftASN1
import X509

/// A signing key with its certificate: what signs leaves.
public struct SigningIdentity: Sendable {
    public let key: P256.Signing.PrivateKey
    public let certificate: Certificate
    /// Computed once: every leaf carries it as its AuthorityKeyId.
    public let keyID: [UInt8]
    let signingKey: Certificate.PrivateKey

    public init(key: P256.Signing.PrivateKey, certificate: Certificate) {
        self.key = key
        self.certificate = certificate
        keyID = KeyMaterial.keyID(key.publicKey)
        signingKey = Certificate.PrivateKey(key)
    }
}

public enum CertificateFactory {
    /// Roots are valid for 10 calendar years (as Consul ≥ 1.4.4).
    static func rootNotAfter(_ now: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(byAdding: .year, value: 10, to: now) ?? now.addingTimeInterval(3650 * 86400)
    }
    /// Leaves are backdated a minute for clock skew, as Consul.
    public static let backdate: TimeInterval = 60
    /// A cross-signed root is valid until the old root it chains to is pruned (2 × leaf TTL)
    /// plus this margin, so it never sits expired in a chain.
    public static let crossSignMargin: TimeInterval = 3600

    /// A self-signed CA certificate for `key`: `CN=Consul CA <serial>`, URI SAN `spiffe://<trustDomain>`.
    public static func root(key: P256.Signing.PrivateKey, serial: UInt64, trustDomain: String, now: Date) throws -> Certificate {
        let name = try DistinguishedName { CommonName("Consul CA \(serial)") }
        let keyID = KeyMaterial.keyID(key.publicKey)
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(serial),
            publicKey: Certificate.PublicKey(key.publicKey),
            // Backdated like leaves (Consul did not): a root is used the moment it exists, and a
            // peer whose clock is a little behind must not see it as not yet valid.
            notValidBefore: now.addingTimeInterval(-backdate), notValidAfter: rootNotAfter(now),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try caExtensions(keyID: keyID, authorityKeyID: keyID, trustDomain: trustDomain),
            issuerPrivateKey: Certificate.PrivateKey(key))
    }

    /// The new root's certificate re-signed by `issuer` (the old root), so peers that trust only
    /// the old root accept chains through the new one. Valid until `notAfter`.
    public static func crossSign(_ newRoot: Certificate, newKey: P256.Signing.PublicKey, by issuer: SigningIdentity,
                                 serial: Certificate.SerialNumber, trustDomain: String, now: Date, notAfter: Date) throws -> Certificate {
        try Certificate(
            version: .v3, serialNumber: serial,
            publicKey: newRoot.publicKey,
            notValidBefore: now.addingTimeInterval(-backdate), notValidAfter: notAfter,
            issuer: issuer.certificate.subject, subject: newRoot.subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try caExtensions(keyID: KeyMaterial.keyID(newKey), authorityKeyID: issuer.keyID, trustDomain: trustDomain),
            issuerPrivateKey: Certificate.PrivateKey(issuer.key))
    }

    /// A leaf for `uri` with a fresh key: CN = `commonName`, one URI SAN, client and server auth.
    public static func leaf(commonName: String, uri: String, serial: Certificate.SerialNumber, ttl: TimeInterval, signer: SigningIdentity,
                            now: Date) throws -> (certificate: Certificate, key: P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let notBefore = now.addingTimeInterval(-backdate)
        let certificate = try Certificate(
            version: .v3, serialNumber: serial,
            publicKey: Certificate.PublicKey(key.publicKey),
            // The TTL counts from issue; the backdating only widens the start (Consul counted the TTL
            // from the backdated start, which made a 1-minute TTL expire on issue).
            notValidBefore: notBefore, notValidAfter: now.addingTimeInterval(ttl),
            issuer: signer.certificate.subject, subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true, keyAgreement: true))
                try ExtendedKeyUsage([.clientAuth, .serverAuth])
                SubjectAlternativeNames([.uniformResourceIdentifier(uri)])
                SubjectKeyIdentifier(keyIdentifier: ArraySlice(KeyMaterial.keyID(key.publicKey)))
                AuthorityKeyIdentifier(keyIdentifier: ArraySlice(signer.keyID))
            },
            issuerPrivateKey: signer.signingKey)
        return (certificate, key)
    }

    private static func caExtensions(keyID: [UInt8], authorityKeyID: [UInt8], trustDomain: String) throws -> Certificate.Extensions {
        try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
            SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://\(trustDomain)")])
            SubjectKeyIdentifier(keyIdentifier: ArraySlice(keyID))
            AuthorityKeyIdentifier(keyIdentifier: ArraySlice(authorityKeyID))
        }
    }
}
