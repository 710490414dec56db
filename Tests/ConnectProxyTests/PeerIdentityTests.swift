import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import Testing
import X509
@testable import ConnectProxy

/// The SPIFFE URI and serial a proxy reads from a peer's certificate (BoringSSL's parse).
struct PeerIdentityTests {
    func certificate(serial: [UInt8], names: [GeneralName]) throws -> NIOSSLCertificate {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("web") }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(bytes: serial), publicKey: .init(key.publicKey),
            notValidBefore: Date(), notValidAfter: Date().addingTimeInterval(3600), issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { SubjectAlternativeNames(names) },
            issuerPrivateKey: .init(key))
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der)
    }

    @Test func theURIAndTheSerialAreRead() throws {
        let uri = "spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/web"
        let peer = try certificate(serial: [0x1f, 0x02, 0xab], names: [.dnsName("web.example"), .uniformResourceIdentifier(uri)])
        let identity = try #require(TLSMaterial.identity(of: peer))
        #expect(identity.uri == uri)
        #expect(identity.serial == "1f:02:ab")
    }

    @Test func aCertificateWithoutAURIHasNoIdentity() throws {
        let peer = try certificate(serial: [7], names: [.dnsName("web.example")])
        #expect(TLSMaterial.identity(of: peer) == nil)
    }
}
