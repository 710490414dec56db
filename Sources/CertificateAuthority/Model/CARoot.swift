// One CA root as stored (with its key) and as served (`CARoot` of `/v1/agent/connect/ca/roots`).

import ConnectdCore
import Foundation

/// A certificate that chains a root to another root (a cross-signature), tied to the root whose
/// key signed it so it leaves every chain when that root is pruned.
public struct ChainCertificate: Sendable, Equatable {
    public var pem: String
    /// `ID` of the root whose key signed it.
    public var signedByRootID: String
    public var notAfter: Date

    public init(pem: String, signedByRootID: String, notAfter: Date) {
        self.pem = pem
        self.signedByRootID = signedByRootID
        self.notAfter = notAfter
    }
}

public struct CARoot: Sendable, Equatable {
    /// Colon-hex SHA-1 of the certificate DER.
    public var id: String
    public var name = "Consul CA Root Cert"
    public var serialNumber: UInt64
    /// Colon-hex key identifier of the root's key (SHA-256 of its SubjectPublicKeyInfo).
    public var signingKeyID: String
    /// The cluster ID (the trust domain without `.consul`).
    public var externalTrustDomain: String
    public var notBefore: Date
    public var notAfter: Date
    public var rootCertPEM: String
    public var intermediates: [ChainCertificate] = []
    public var active: Bool
    /// When it stopped being active; pruned 2 × leaf TTL later.
    public var rotatedOutAt: Date?
    /// The root's key, SEC1 PEM. Stored under data_dir (0600), never served.
    public var privateKeyPEM: String
    public var createIndex: UInt64
    public var modifyIndex: UInt64

    /// The API shape, in Consul's field order; never includes the key.
    public var apiJSON: JSONValue {
        .object([
            ("ID", .string(id)),
            ("Name", .string(name)),
            ("SerialNumber", .int(Int64(bitPattern: serialNumber))),
            ("SigningKeyID", .string(signingKeyID)),
            ("ExternalTrustDomain", .string(externalTrustDomain)),
            ("NotBefore", .string(RFC3339.format(notBefore))),
            ("NotAfter", .string(RFC3339.format(notAfter))),
            ("RootCert", .string(rootCertPEM)),
            ("IntermediateCerts", intermediates.isEmpty ? .null : .array(intermediates.map { .string($0.pem) })),
            ("Active", .bool(active)),
            ("CreateIndex", .int(Int64(createIndex))),
            ("ModifyIndex", .int(Int64(modifyIndex))),
        ])
    }

    /// The stored shape: everything, including the key.
    var storedJSON: JSONValue {
        var members: [(String, JSONValue)] = apiJSON.objectMembers!.filter { $0.0 != "IntermediateCerts" }
        members.append(("Intermediates", .array(intermediates.map { chain in
            .object([("PEM", .string(chain.pem)), ("SignedByRootID", .string(chain.signedByRootID)),
                     ("NotAfter", .string(RFC3339.format(chain.notAfter)))])
        })))
        members.append(("RotatedOutAt", rotatedOutAt.map { .string(RFC3339.format($0)) } ?? .null))
        members.append(("PrivateKey", .string(privateKeyPEM)))
        return .object(members)
    }

    init(id: String, serialNumber: UInt64, signingKeyID: String, externalTrustDomain: String, notBefore: Date, notAfter: Date,
         rootCertPEM: String, active: Bool, privateKeyPEM: String, createIndex: UInt64, modifyIndex: UInt64) {
        self.id = id
        self.serialNumber = serialNumber
        self.signingKeyID = signingKeyID
        self.externalTrustDomain = externalTrustDomain
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.rootCertPEM = rootCertPEM
        self.active = active
        self.privateKeyPEM = privateKeyPEM
        self.createIndex = createIndex
        self.modifyIndex = modifyIndex
    }

    /// Reads a stored root; nil when a field is missing or malformed.
    init?(stored json: JSONValue) {
        guard case .string(let id)? = json["ID"], case .int(let serial)? = json["SerialNumber"],
              case .string(let keyID)? = json["SigningKeyID"], case .string(let external)? = json["ExternalTrustDomain"],
              let notBefore = json["NotBefore"]?.stringValue.flatMap(RFC3339.parse),
              let notAfter = json["NotAfter"]?.stringValue.flatMap(RFC3339.parse),
              case .string(let pem)? = json["RootCert"], case .bool(let active)? = json["Active"],
              case .string(let key)? = json["PrivateKey"], case .int(let create)? = json["CreateIndex"],
              case .int(let modify)? = json["ModifyIndex"]
        else { return nil }
        self.init(id: id, serialNumber: UInt64(bitPattern: serial), signingKeyID: keyID, externalTrustDomain: external,
                  notBefore: notBefore, notAfter: notAfter, rootCertPEM: pem, active: active, privateKeyPEM: key,
                  createIndex: UInt64(max(create, 0)), modifyIndex: UInt64(max(modify, 0)))
        if case .string(let name)? = json["Name"] { self.name = name }
        rotatedOutAt = json["RotatedOutAt"]?.stringValue.flatMap(RFC3339.parse)
        if case .array(let chains)? = json["Intermediates"] {
            for chain in chains {
                guard case .string(let pem)? = chain["PEM"], case .string(let signer)? = chain["SignedByRootID"],
                      let notAfter = chain["NotAfter"]?.stringValue.flatMap(RFC3339.parse) else { return nil }
                intermediates.append(ChainCertificate(pem: pem, signedByRootID: signer, notAfter: notAfter))
            }
        }
    }
}
