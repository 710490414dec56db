import AgentConfig
import AgentState
import AgentStore
import CertificateAuthority
import ConnectdCore
import Foundation
import Testing

/// The CA on a real FileStore, checked with the openssl CLI.
@Suite struct AuthorityTests {
    @Test func rootAndLeafPassOpenSSLVerification() async throws {
        let dir = temporaryDirectory()
        let ca = try await openCA(dir)
        let roots = ca.roots
        let root = try #require(roots.activeRoot)
        #expect(roots.trustDomain.hasSuffix(".consul"))
        #expect(root.externalTrustDomain + ".consul" == roots.trustDomain)
        #expect(root.id.split(separator: ":").count == 20)
        #expect(root.signingKeyID.count == 95)
        #expect(root.name == "Consul CA Root Cert")
        let leaf = try ca.issueLeaf(service: "web", datacenter: "dc1")
        #expect(leaf.serviceURI == "spiffe://\(roots.trustDomain)/ns/default/dc/dc1/svc/web")
        #expect(leaf.validBefore.timeIntervalSince(leaf.validAfter) == 72 * 3600 + 60)
        #expect(abs(leaf.validAfter.timeIntervalSinceNow + 60) < 5, "backdated one minute")
        #expect(leaf.privateKeyPEM.hasPrefix("-----BEGIN EC PRIVATE KEY-----"))
        try write(root.rootCertPEM, "root.pem", in: dir)
        try write(leaf.certPEM, "leaf.pem", in: dir)
        try write(leaf.privateKeyPEM, "key.pem", in: dir)
        for purpose in ["sslclient", "sslserver"] {
            let result = try openssl(["verify", "-x509_strict", "-purpose", purpose, "-CAfile", "root.pem", "leaf.pem"], in: dir)
            #expect(result.status == 0, "\(purpose): \(result.output)")
        }
        let text = try openssl(["x509", "-in", "leaf.pem", "-noout", "-text"], in: dir).output
        #expect(text.contains("Subject: CN = web"))
        #expect(text.contains("Issuer: CN = Consul CA \(root.serialNumber)"))
        #expect(text.contains("CA:FALSE"))
        #expect(text.contains("Digital Signature, Key Encipherment, Key Agreement"))
        #expect(text.contains("TLS Web Client Authentication, TLS Web Server Authentication"))
        #expect(text.contains("URI:\(leaf.serviceURI)"))
        #expect(text.contains("Subject Key Identifier"))
        #expect(text.contains("Authority Key Identifier"))
        #expect(text.uppercased().contains(root.signingKeyID.uppercased()), "AKI is the root's key ID")
        let rootText = try openssl(["x509", "-in", "root.pem", "-noout", "-text"], in: dir).output
        #expect(rootText.contains("CA:TRUE"))
        #expect(rootText.contains("Digital Signature, Certificate Sign, CRL Sign"))
        #expect(rootText.contains("URI:spiffe://\(roots.trustDomain)"))
        // The key really is the certificate's.
        let keyCheck = try openssl(["x509", "-in", "leaf.pem", "-noout", "-pubkey"], in: dir).output
        let keyPub = try openssl(["ec", "-in", "key.pem", "-pubout"], in: dir).output
        #expect(keyPub.contains(keyCheck.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    @Test func stateSurvivesARestartAndSerialsAreNeverReused() async throws {
        let dir = temporaryDirectory()
        let first = try await openCA(dir)
        let before = first.roots
        var serials: Set<[UInt8]> = [try first.issueLeaf(service: "web", datacenter: "dc1").serial]
        let second = try await openCA(dir)
        #expect(second.roots == before)
        for service in ["web", "db", "alpha", "beta"] {
            let leaf = try second.issueLeaf(service: service, datacenter: "dc1")
            #expect(leaf.serial.count >= 16 && leaf.serial.count <= 17, "128 random bits (DER may add a zero byte)")
            #expect(serials.insert(leaf.serial).inserted)
        }
        let keyFile = dir + "/state/ca/roots.json"
        let mode = try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func rotationCrossSignsAndOldRootsArePrunedWithTheirChain() async throws {
        let dir = temporaryDirectory()
        let start = Date()
        let ca = try await openCA(dir, now: start)
        let old = try #require(ca.roots.activeRoot)
        let watched = ca.roots.index
        var settings = CASettings()
        settings.generateKey = true
        #expect(try await ca.applyConfiguration(settings, now: start))
        #expect(ca.rootsWatch.index > watched, "roots watchers wake")
        let roots = ca.roots
        #expect(roots.roots.count == 2)
        let new = try #require(roots.activeRoot)
        #expect(new.id != old.id && roots.activeRootID == new.id)
        #expect(new.intermediates.count == 1)
        #expect(roots.roots.first { $0.id == old.id }?.active == false)
        let leaf = try ca.issueLeaf(service: "web", datacenter: "dc1", now: start)
        let blocks = pemBlocks(leaf.certPEM)
        #expect(blocks.count == 2, "leaf plus the cross-signed root")
        try write(old.rootCertPEM, "old.pem", in: dir)
        try write(new.rootCertPEM, "new.pem", in: dir)
        try write(blocks[0], "leaf.pem", in: dir)
        try write(blocks[1], "cross.pem", in: dir)
        let direct = try openssl(["verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", "new.pem", "leaf.pem"], in: dir)
        #expect(direct.status == 0, "\(direct.output)")
        let viaOld = try openssl(["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", "old.pem", "-untrusted", "cross.pem", "leaf.pem"], in: dir)
        #expect(viaOld.status == 0, "\(viaOld.output)")
        let oldOnly = try openssl(["verify", "-CAfile", "old.pem", "leaf.pem"], in: dir)
        #expect(oldOnly.status != 0, "the chain is what makes the old root accept it")

        // Not yet due: nothing pruned.
        try await ca.prune(now: start.addingTimeInterval(3600))
        #expect(ca.roots.roots.count == 2)
        // 2 × leaf TTL later the old root and the cross-signature it made are gone.
        let later = start.addingTimeInterval(2 * 72 * 3600 + 1)
        let indexBefore = ca.roots.index
        try await ca.prune(now: later)
        #expect(ca.roots.roots.map(\.id) == [new.id])
        #expect(ca.roots.activeRoot?.intermediates.isEmpty == true)
        #expect(ca.roots.index > indexBefore)
        #expect(pemBlocks(try ca.issueLeaf(service: "web", datacenter: "dc1", now: later).certPEM).count == 1)
        // And it stays that way after a restart.
        #expect(try await openCA(dir).roots.roots.map(\.id) == [new.id])
    }

    @Test func aSuppliedKeyRotatesOnceAndAMismatchedRootCertIsRefused() async throws {
        let dir = temporaryDirectory()
        let ca = try await openCA(dir)
        try #require(try openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "k.pem"], in: dir).status == 0)
        var settings = CASettings()
        settings.privateKey = try String(contentsOfFile: dir + "/k.pem", encoding: .utf8)
        #expect(try await ca.applyConfiguration(settings))
        #expect(try await !ca.applyConfiguration(settings), "the same key again is not a rotation")
        #expect(ca.roots.roots.count == 2)

        try #require(try openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "other.pem"], in: dir).status == 0)
        var mismatched = CASettings()
        mismatched.privateKey = try String(contentsOfFile: dir + "/other.pem", encoding: .utf8)
        mismatched.rootCert = ca.roots.activeRoot!.rootCertPEM
        await #expect(throws: StateError.self) { try await ca.applyConfiguration(mismatched) }
        do {
            try await ca.applyConfiguration(mismatched)
        } catch {
            #expect("\(error)" == "RootCert: the certificate's public key does not match PrivateKey")
        }
        var garbage = CASettings()
        garbage.privateKey = "-----BEGIN EC PRIVATE KEY-----\nnot base64\n-----END EC PRIVATE KEY-----\n"
        do {
            try await ca.applyConfiguration(garbage)
            Issue.record("a garbage key was accepted")
        } catch {
            #expect("\(error)".hasPrefix("PrivateKey: cannot read private key"))
        }
        #expect(ca.roots.roots.count == 2, "refused changes change nothing")
    }

    @Test func aFullDiskLosesNothing() async throws {
        let dir = temporaryDirectory()
        let before = try await openCA(dir).roots
        let allocator = PortAllocator(range: nil, probe: BindPortProbe(address: "127.0.0.1"))
        let ca = TestCA(state: try AgentState(store: FullDiskStore(try FileStore(dataDir: dir)), allocator: allocator, logger: quietLogger))
        var settings = CASettings()
        settings.generateKey = true
        settings.leafCertTTL = .seconds(3600)
        await #expect(throws: StateError.self) { try await ca.applyConfiguration(settings) }
        #expect(ca.roots == before)
        #expect(ca.configuration.leafCertTTL == .seconds(72 * 3600))
        #expect(try await openCA(dir).roots == before)
    }

    @Test func aCorruptRootsRecordIsAClearErrorNotANewCA() async throws {
        let dir = temporaryDirectory()
        _ = try await openCA(dir)
        try #"{"ModRevision": 1, "Value": {"ClusterID": "x", "Roots": [{"ID": "only"}]}}"#
            .write(toFile: dir + "/state/ca/roots.json", atomically: true, encoding: .utf8)
        do {
            _ = try await openCA(dir)
            Issue.record("opened a corrupt CA")
        } catch {
            #expect("\(error)".contains("state/ca/roots.json"))
        }
    }

    @Test func fileSettingsApplyOnceAndOnChange() async throws {
        let dir = temporaryDirectory()
        var settings = CASettings()
        settings.leafCertTTL = .seconds(3600)
        settings.clusterID = "11111111-2222-3333-4444-555555555555"
        let ca = try await openCA(dir, settings: settings)
        #expect(ca.trustDomain == "11111111-2222-3333-4444-555555555555.consul")
        #expect(ca.configuration.leafCertTTL == .seconds(3600))
        // An API change sticks across restarts while the file says the same.
        var api = CASettings()
        api.leafCertTTL = .seconds(7200)
        try await ca.applyConfiguration(api)
        #expect(try await openCA(dir, settings: settings).configuration.leafCertTTL == .seconds(7200))
        // A changed file setting is applied.
        settings.leafCertTTL = .seconds(600)
        #expect(try await openCA(dir, settings: settings).configuration.leafCertTTL == .seconds(600))
    }
}
