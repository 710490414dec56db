// The proxy's identity and trust: its leaf (with chain) and key, the roots, and the TLS contexts
// built from them. Rebuilt whenever the leaf or the roots change; new connections use the newest.

import ConnectdCore
import Foundation
import NIOSSL

public struct TLSMaterial: Sendable {
    /// Colon-hex serial and index of the leaf (for logs and the leaf watch).
    public var leafSerial: String
    public var trustDomain: String
    /// When the leaf expires (`ValidBefore` of the leaf answer), for the expiry metric.
    public var leafValidBefore: Date?
    let serverContext: NIOSSLContext
    let clientContext: NIOSSLContext

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    /// From a leaf answer (`CertPEM`, `PrivateKeyPEM`) and a roots answer (`Roots[].RootCert`).
    public init(leaf: JSONValue, roots: JSONValue) throws {
        guard let certPEM = leaf["CertPEM"]?.stringValue, let keyPEM = leaf["PrivateKeyPEM"]?.stringValue else {
            throw Invalid(description: "leaf answer without CertPEM or PrivateKeyPEM")
        }
        guard case .array(let rootList)? = roots["Roots"], let trustDomain = roots["TrustDomain"]?.stringValue else {
            throw Invalid(description: "roots answer without Roots or TrustDomain")
        }
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(certPEM.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
        var trusted: [NIOSSLCertificate] = []
        for root in rootList {
            if let pem = root["RootCert"]?.stringValue { trusted += try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)) }
        }
        guard !chain.isEmpty, !trusted.isEmpty else { throw Invalid(description: "no certificate in the leaf or the roots") }

        var server = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        server.minimumTLSVersion = .tlsv12
        // Client certificates are required and verified against the roots; the SPIFFE identity
        // is then checked by authorize.
        server.certificateVerification = .noHostnameVerification
        server.trustRoots = .certificates(trusted)
        var client = TLSConfiguration.makeClientConfiguration()
        client.minimumTLSVersion = .tlsv12
        client.certificateChain = chain.map { .certificate($0) }
        client.privateKey = .privateKey(key)
        // The server's name is its SPIFFE ID, checked after the handshake.
        client.certificateVerification = .noHostnameVerification
        client.trustRoots = .certificates(trusted)
        // Key exchange: X25519 first (the cheapest safe curve), P-256 for peers without it. BoringSSL
        // would otherwise offer the hybrid X25519+ML-KEM-768 first, which costs a new connection
        // more CPU than the rest of the handshake's key exchange (measured: bench/RESULTS.md).
        server.curves = Self.curves
        client.curves = Self.curves
        serverContext = try NIOSSLContext(configuration: server)
        clientContext = try NIOSSLContext(configuration: client)
        leafSerial = leaf["SerialNumber"]?.stringValue ?? "?"
        leafValidBefore = leaf["ValidBefore"]?.stringValue.flatMap(RFC3339.parse)
        self.trustDomain = trustDomain
    }

    static let curves: [NIOTLSCurve] = [.x25519, .secp256r1]

    /// The SPIFFE URI and colon-hex serial of a peer certificate, read from BoringSSL's own parse
    /// (a second parse with swift-certificates cost about 5 % of a proxy's CPU per new connection).
    static func identity(of certificate: NIOSSLCertificate) -> (uri: String, serial: String)? {
        guard let uri = certificate._subjectAlternativeNames().first(where: { $0.nameType == .uri }) else { return nil }
        return (uri.contents.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }, ColonHex.encode(certificate.serialNumber))
    }
}
