// A signed leaf certificate with its key, as `/v1/agent/connect/ca/leaf/:service` serves it.

import AgentStore
import ConnectdCore
import Foundation

public struct IssuedCert: Sendable, Equatable, BlockingResult {
    /// The serial's DER integer bytes (128 random bits).
    public var serial: [UInt8]
    /// The issue index: rises with every certificate the leaf cache obtains, across restarts too.
    public var index: UInt64
    /// The leaf, then every chain certificate of the active root (cross-signatures).
    public var certPEM: String
    /// SEC1 `EC PRIVATE KEY` PEM.
    public var privateKeyPEM: String
    public var service: String
    public var serviceURI: String
    public var validAfter: Date
    public var validBefore: Date
    /// Colon-hex key ID of the root that signed it (compared with the active root on rotation).
    public var authorityKeyID: String
    /// Consul's colon-hex form of the serial.
    public var serialText: String { ColonHex.encode(serial) }

    public var resourceIndex: UInt64 { index }
    public var contentHash: String { "" }

    /// The API shape, in Consul's field order.
    public var apiJSON: JSONValue {
        .object([
            ("SerialNumber", .string(serialText)),
            ("CertPEM", .string(certPEM)),
            ("PrivateKeyPEM", .string(privateKeyPEM)),
            ("Service", .string(service)),
            ("ServiceURI", .string(serviceURI)),
            ("ValidAfter", .string(RFC3339.format(validAfter))),
            ("ValidBefore", .string(RFC3339.format(validBefore))),
            ("CreateIndex", .int(Int64(index))),
            ("ModifyIndex", .int(Int64(index))),
        ])
    }
}

/// What `/v1/agent/connect/ca/roots` serves: every root not yet pruned, the active one marked.
public struct RootsView: Sendable, Equatable, BlockingResult {
    public var trustDomain: String
    public var activeRootID: String
    public var roots: [CARoot]
    /// The store revision that last changed the roots.
    public var index: UInt64

    public var apiJSON: JSONValue {
        .object([
            ("ActiveRootID", .string(activeRootID)),
            ("TrustDomain", .string(trustDomain)),
            ("Roots", .array(roots.map(\.apiJSON))),
        ])
    }

    public var activeRoot: CARoot? { roots.first { $0.active } }
    public var resourceIndex: UInt64 { index }
    public var contentHash: String { "" }
}
