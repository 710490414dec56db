// P-256 keys: generation, SEC1 PEM (what Consul hands to proxies), parsing, key identifiers.

import ConnectdCore
import Crypto
import SwiftASN1
import X509

public enum KeyMaterialError: Error, Sendable, CustomStringConvertible {
    case unreadableKey(String)
    case unreadableCertificate(String)

    public var description: String {
        switch self {
        case .unreadableKey(let reason): "cannot read private key: \(reason)"
        case .unreadableCertificate(let reason): "cannot read certificate: \(reason)"
        }
    }
}

public enum KeyMaterial {
    /// Parses a P-256 key from PEM (`EC PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
    public static func privateKey(pem: String) throws(KeyMaterialError) -> P256.Signing.PrivateKey {
        do {
            return try P256.Signing.PrivateKey(pemRepresentation: pem)
        } catch {
            throw .unreadableKey("expected a P-256 EC key in PEM (\"EC PRIVATE KEY\" or \"PRIVATE KEY\"): \(error)")
        }
    }

    /// The key as SEC1 `EC PRIVATE KEY` PEM, as Consul's agent returns leaf keys.
    public static func sec1PEM(_ key: P256.Signing.PrivateKey) -> String {
        var serializer = DER.Serializer()
        // ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING, [0] curve OID, [1] public key BIT STRING }
        try! serializer.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(1)
            try coder.serialize(ASN1OctetString(contentBytes: ArraySlice(key.rawRepresentation)))
            try coder.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { coder in
                try coder.serialize(ASN1ObjectIdentifier.NamedCurves.secp256r1)
            }
            try coder.serialize(explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific) { coder in
                try coder.serialize(ASN1BitString(bytes: ArraySlice(key.publicKey.x963Representation)))
            }
        }
        return PEMDocument(type: "EC PRIVATE KEY", derBytes: serializer.serializedBytes).pemString + "\n"
    }

    /// The key identifier: SHA-256 of the public key's SubjectPublicKeyInfo DER (Consul ≥ 1.7).
    public static func keyID(_ key: P256.Signing.PublicKey) -> [UInt8] {
        Array(SHA256.hash(data: key.derRepresentation))
    }

    /// The first certificate in `pem`.
    public static func certificate(pem: String) throws(KeyMaterialError) -> Certificate {
        do {
            return try Certificate(pemEncoded: pem)
        } catch {
            throw .unreadableCertificate("\(error)")
        }
    }

    /// A certificate as PEM with a trailing newline.
    public static func pem(_ certificate: Certificate) -> String {
        (try! certificate.serializeAsPEM().pemString) + "\n"
    }

    /// The certificate's DER bytes.
    public static func der(_ certificate: Certificate) -> [UInt8] {
        var serializer = DER.Serializer()
        try! serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    /// Consul's root `ID`: colon-hex SHA-1 of the certificate DER.
    public static func fingerprint(_ certificate: Certificate) -> String {
        ColonHex.encode(Insecure.SHA1.hash(data: der(certificate)))
    }
}
