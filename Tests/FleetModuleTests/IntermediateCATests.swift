import CertificateAuthority
import ConnectdCore
import Crypto
import Foundation
import Testing
import X509

/// The fleet's chain of trust as pure functions: a host's CSR, the root holder's signature, the
/// CA state a host serves from them (and why it signs nothing when it cannot), half-life renewal.
struct IntermediateCATests {
    let now = Date()

    @Test func aHostSignsLeavesThatChainThroughItsIntermediate() throws {
        let (root, record) = try IntermediateCA.newRoot(clusterID: "11111111-2222-3333-4444-555555555555", now: now)
        let hostKey = P256.Signing.PrivateKey()
        let csr = try IntermediateCA.request(key: hostKey, node: "host-a")
        let requested = try IntermediateCA.requestedKey(csr)
        #expect(requested == Certificate.PublicKey(hostKey.publicKey))
        let intermediate = try IntermediateCA.sign(requested, node: "host-a", by: root, trustDomain: "11111111-2222-3333-4444-555555555555.consul", now: now)
        #expect(abs(intermediate.notValidAfter.timeIntervalSince(now) - IntermediateCA.defaultTTL) < 2)
        let pem = KeyMaterial.pem(intermediate)
        let state = IntermediateCA.hostState(clusterID: "11111111-2222-3333-4444-555555555555", roots: [record], rootsIndex: 3,
                                             intermediatePEM: pem, key: hostKey, now: now)
        #expect(state.signer != nil && state.leafChain == [pem] && state.fleetManaged)
        let leaf = try CAPolicy.issueLeaf(state, service: "web", datacenter: "dc1", index: 1, now: now)
        #expect(leaf.certPEM.components(separatedBy: "BEGIN CERTIFICATE").count - 1 == 2, "leaf + intermediate")
        #expect(leaf.serviceURI == "spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/web")
        let first = leaf.certPEM.components(separatedBy: "-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
        let leafCertificate = try KeyMaterial.certificate(pem: first)
        #expect(intermediate.publicKey.isValidSignature(leafCertificate.signature, for: leafCertificate))
        #expect(leaf.validBefore <= intermediate.notValidAfter)
    }

    @Test func aLeafNeverOutlivesItsIntermediate() throws {
        let (root, record) = try IntermediateCA.newRoot(clusterID: "c", now: now)
        let hostKey = P256.Signing.PrivateKey()
        let intermediate = try IntermediateCA.sign(Certificate.PublicKey(hostKey.publicKey), node: "n", by: root, trustDomain: "c.consul",
                                                   ttl: 3600, now: now)
        let state = IntermediateCA.hostState(clusterID: "c", roots: [record], rootsIndex: 1, intermediatePEM: KeyMaterial.pem(intermediate),
                                             key: hostKey, now: now)
        let leaf = try CAPolicy.issueLeaf(state, service: "web", datacenter: "dc1", index: 1, now: now)
        #expect(abs(leaf.validBefore.timeIntervalSince(intermediate.notValidAfter)) < 1, "72 h capped to the intermediate's 1 h")
    }

    @Test func withoutAUsableIntermediateItSaysWhy() throws {
        let (root, record) = try IntermediateCA.newRoot(clusterID: "c", now: now)
        let (_, otherRecord) = try IntermediateCA.newRoot(clusterID: "c", now: now)
        let hostKey = P256.Signing.PrivateKey()
        func reason(_ roots: [CARoot], _ pem: String?, at time: Date? = nil) -> String? {
            let state = IntermediateCA.hostState(clusterID: "c", roots: roots, rootsIndex: 1, intermediatePEM: pem, key: hostKey, now: time ?? now)
            guard state.signer == nil else { return nil }
            if case .unavailable(let text)? = Result(catching: { () throws(CAError) in
                try CAPolicy.issueLeaf(state, service: "web", datacenter: "dc1", index: 1)
            }).failure { return text }
            return "signed anyway"
        }
        #expect(reason([], nil)?.contains("no root yet") == true)
        #expect(reason([record], nil)?.contains("waiting for the root holder") == true)
        let forOtherKey = KeyMaterial.pem(try IntermediateCA.sign(Certificate.PublicKey(P256.Signing.PrivateKey().publicKey), node: "n",
                                                                  by: root, trustDomain: "c.consul", now: now))
        #expect(reason([record], forOtherKey)?.contains("for another key") == true)
        let mine = KeyMaterial.pem(try IntermediateCA.sign(Certificate.PublicKey(hostKey.publicKey), node: "n", by: root, trustDomain: "c.consul",
                                                           ttl: 60, now: now))
        #expect(reason([otherRecord], mine)?.contains("not signed by a root of the fleet") == true)
        #expect(reason([record], mine, at: now.addingTimeInterval(120))?.contains("expired") == true)
        #expect(reason([record], mine) == nil)
    }

    @Test func renewalIsDueAtHalfLifeOrForAnotherKeyOrRoot() throws {
        let (root, record) = try IntermediateCA.newRoot(clusterID: "c", now: now)
        let (_, newer) = try IntermediateCA.newRoot(clusterID: "c", now: now)
        let key = Certificate.PublicKey(P256.Signing.PrivateKey().publicKey)
        let pem = KeyMaterial.pem(try IntermediateCA.sign(key, node: "n", by: root, trustDomain: "c.consul", now: now))
        #expect(!IntermediateCA.needsRenewal(pem, for: key, activeRoot: record, now: now.addingTimeInterval(3 * 86400)))
        #expect(IntermediateCA.needsRenewal(pem, for: key, activeRoot: record, now: now.addingTimeInterval(3.6 * 86400)))
        #expect(IntermediateCA.needsRenewal(pem, for: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey), activeRoot: record, now: now))
        #expect(IntermediateCA.needsRenewal(pem, for: key, activeRoot: newer, now: now))
    }

    @Test func aTamperedCSRIsRefused() throws {
        let csr = try IntermediateCA.request(key: P256.Signing.PrivateKey(), node: "host-a")
        var lines = csr.split(separator: "\n").map(String.init)
        // Flip one character inside the signed body.
        var body = Array(lines[2])
        body[10] = body[10] == "A" ? "B" : "A"
        lines[2] = String(body)
        #expect(throws: CAError.self) { try IntermediateCA.requestedKey(lines.joined(separator: "\n")) }
        #expect(throws: CAError.self) { try IntermediateCA.requestedKey("not a CSR") }
    }

    @Test func rootsRoundTripThroughTheirPublishedRecord() throws {
        let (_, record) = try IntermediateCA.newRoot(clusterID: "c", now: now)
        let read = try #require(CARoot(published: record.publishedJSON, index: 9))
        #expect(read.id == record.id && read.rootCertPEM == record.rootCertPEM && read.active && read.privateKeyPEM.isEmpty)
        #expect(read.createIndex == 9 && read.modifyIndex == 9)
        #expect(record.publishedJSON["PrivateKey"] == nil)
    }
}

extension Result {
    var failure: Failure? { if case .failure(let error) = self { error } else { nil } }
}
