import AgentConfig
import ConnectdCore
import Foundation
import Testing

/// Roots, leaf and CA configuration over real HTTP (goldens 10–13, 20–27; rotation).
@Suite struct CAEndpointTests {
    static let fastRotation = #"{"connect": {"ca_config": {"root_change_jitter": "0s"}}}"#

    @Test func rootsHaveTheGoldenShapeAndHeaders() async throws {
        try await TestAgent.with { agent in
            for path in ["/v1/agent/connect/ca/roots", "/v1/connect/ca/roots"] {
                let response = try await agent.request("GET", path)
                #expect(response.status == 200)
                #expect(response.header("X-Consul-Knownleader") == "true")
                #expect(response.header("X-Consul-Lastcontact") == "0")
                let body = try JSONParser.parse(response.body)
                #expect(body.objectMembers?.map(\.0) == ["ActiveRootID", "TrustDomain", "Roots"])
                guard case .array(let roots)? = body["Roots"], let root = roots.first else {
                    Issue.record("no roots")
                    continue
                }
                #expect(root.objectMembers?.map(\.0) == ["ID", "Name", "SerialNumber", "SigningKeyID", "ExternalTrustDomain", "NotBefore",
                                                         "NotAfter", "RootCert", "IntermediateCerts", "Active", "CreateIndex", "ModifyIndex"])
                #expect(root["IntermediateCerts"] == .null)
                #expect(root["ID"] == body["ActiveRootID"])
                #expect(response.header("X-Consul-Index") == root["ModifyIndex"].map { "\($0.encoded())" })
                #expect(!response.text.contains("PRIVATE KEY"))
            }
            let post = try await agent.request("POST", "/v1/agent/connect/ca/roots")
            #expect(post.status == 405 && post.text == "method POST not allowed" && post.header("Allow") == "OPTIONS,GET")
        }
    }

    @Test func rootsBlockUntilTheWaitEnds() async throws {
        try await TestAgent.with { agent in
            let index = try #require(try await agent.request("GET", "/v1/agent/connect/ca/roots").header("X-Consul-Index"))
            let clock = ContinuousClock()
            let started = clock.now
            let response = try await agent.request("GET", "/v1/agent/connect/ca/roots?index=\(index)&wait=1s")
            #expect(clock.now - started >= .seconds(1))
            #expect(response.status == 200 && response.header("X-Consul-Index") == index)
            #expect(try await agent.request("GET", "/v1/agent/connect/ca/roots?wait=xyz").text == "Invalid wait time")
        }
    }

    @Test func leafHasTheGoldenShapeAndIsCached() async throws {
        try await TestAgent.with(files: ["web.json": webProxyConfig]) { agent in
            let first = try await agent.request("GET", "/v1/agent/connect/ca/leaf/web")
            #expect(first.status == 200 && first.header("X-Cache") == "MISS")
            let body = try JSONParser.parse(first.body)
            #expect(body.objectMembers?.map(\.0) == ["SerialNumber", "CertPEM", "PrivateKeyPEM", "Service", "ServiceURI", "ValidAfter",
                                                     "ValidBefore", "CreateIndex", "ModifyIndex"])
            #expect(first.header("X-Consul-Index") == body["ModifyIndex"].map { "\($0.encoded())" })
            #expect(body["Service"] == .string("web"))
            let again = try await agent.request("GET", "/v1/agent/connect/ca/leaf/web")
            #expect(again.header("X-Cache") == "HIT" && again.body == first.body)
            let older = try await agent.request("GET", "/v1/agent/connect/ca/leaf/web?index=1&wait=2s")
            #expect(older.body == first.body)
            // A service that is not registered still gets a certificate, as in Consul.
            #expect(try await agent.request("GET", "/v1/agent/connect/ca/leaf/nosuch").status == 200)
            let empty = try await agent.request("GET", "/v1/agent/connect/ca/leaf/")
            #expect(empty.status == 400 && empty.text.hasPrefix("Bad request: missing service name"))
            #expect(try await agent.request("GET", "/v1/agent/connect/ca/leaf/a/b").status == 400)
            let post = try await agent.request("POST", "/v1/agent/connect/ca/leaf/web")
            #expect(post.status == 405 && post.text == "method POST not allowed")
        }
    }

    @Test func aProxyTokenGetsOnlyItsTargetsLeaf() async throws {
        try await TestAgent.with(files: ["web.json": webProxyConfig]) { agent in
            let token = try #require(agent.agent.state.snapshot.proxies["web-proxy"]?.token)
            #expect(try await agent.request("GET", "/v1/agent/connect/ca/leaf/web", headers: [("X-Consul-Token", token)]).status == 200)
            let other = try await agent.request("GET", "/v1/agent/connect/ca/leaf/db?token=\(token)")
            #expect(other.status == 403 && other.text == "Permission denied")
        }
    }

    @Test func rotationWakesRootsAndLeafWatchers() async throws {
        try await TestAgent.with(files: ["ca.json": Self.fastRotation]) { agent in
            let roots = try await agent.request("GET", "/v1/agent/connect/ca/roots")
            let rootsIndex = try #require(roots.header("X-Consul-Index"))
            let oldRoot = try #require(try JSONParser.parse(roots.body)["Roots"].flatMap { if case .array(let a) = $0 { a.first } else { nil } })
            let leaf = try await agent.request("GET", "/v1/agent/connect/ca/leaf/web")
            let leafIndex = try #require(leaf.header("X-Consul-Index"))
            async let rootsWait = agent.request("GET", "/v1/agent/connect/ca/roots?index=\(rootsIndex)&wait=30s")
            async let leafWait = agent.request("GET", "/v1/agent/connect/ca/leaf/web?index=\(leafIndex)&wait=30s")
            try await Task.sleep(for: .milliseconds(300))
            let put = try await agent.request("PUT", "/v1/connect/ca/configuration", body: #"{"Provider":"consul","Config":{"GenerateKey":true}}"#)
            #expect(put.status == 200)
            let (newRoots, newLeaf) = try await (rootsWait, leafWait)
            // Woken by the rotation, not by the 30 s wait running out: both indexes moved.
            #expect(newRoots.header("X-Consul-Index") != rootsIndex)
            #expect(newLeaf.header("X-Consul-Index") != leafIndex)
            let rootsBody = try JSONParser.parse(newRoots.body)
            guard case .array(let list)? = rootsBody["Roots"] else { Issue.record("no roots"); return }
            #expect(list.count == 2)
            #expect(rootsBody["ActiveRootID"] != oldRoot["ID"])
            let active = try #require(list.first { $0["Active"] == .bool(true) })
            #expect(active["IntermediateCerts"].map { if case .array(let a) = $0 { a.count } else { 0 } } == 1)
            let leafBody = try JSONParser.parse(newLeaf.body)
            #expect(Int(newLeaf.header("X-Consul-Index") ?? "") ?? 0 > Int(leafIndex) ?? 0)
            #expect(leafBody["CertPEM"]?.stringValue?.components(separatedBy: "BEGIN CERTIFICATE").count == 3, "leaf + cross-signed root")
        }
    }

    @Test func configurationGetAndPut() async throws {
        try await TestAgent.with { agent in
            let get = try JSONParser.parse(try await agent.request("GET", "/v1/connect/ca/configuration").body)
            #expect(get.objectMembers?.map(\.0) == ["Provider", "Config", "CreateIndex", "ModifyIndex"])
            #expect(get["Config"]?["LeafCertTTL"] == .string("72h0m0s"))
            let put = try await agent.request("PUT", "/v1/connect/ca/configuration", body: #"{"Provider":"consul","Config":{"LeafCertTTL":"24h"}}"#)
            #expect(put.status == 200)
            let after = try JSONParser.parse(try await agent.request("GET", "/v1/connect/ca/configuration").body)
            #expect(after["Config"]?["LeafCertTTL"] == .string("24h0m0s"))
            #expect(after["Config"]?["PrivateKey"] == nil)
            let leaf = try JSONParser.parse(try await agent.request("GET", "/v1/agent/connect/ca/leaf/web").body)
            let validity = RFC3339Text.seconds(leaf["ValidBefore"]) - RFC3339Text.seconds(leaf["ValidAfter"])
            #expect(validity == 24 * 3600 + 60)

            let broken = try await agent.request("PUT", "/v1/connect/ca/configuration", body: "{")
            #expect(broken.status == 400 && broken.text == "Request decode failed: unexpected EOF")
            let badTTL = try await agent.request("PUT", "/v1/connect/ca/configuration", body: #"{"Config":{"LeafCertTTL":"soon"}}"#)
            #expect(badTTL.status == 400 && badTTL.text.contains("LeafCertTTL") && badTTL.text.contains("\"soon\""), "\(badTTL.text)")
            let vault = try await agent.request("PUT", "/v1/connect/ca/configuration", body: #"{"Provider":"vault","Config":{}}"#)
            #expect(vault.status == 400 && vault.text.contains("unsupported CA provider \"vault\""))
            let key = try await agent.request("PUT", "/v1/connect/ca/configuration", body: #"{"Config":{"PrivateKey":"nope"}}"#)
            #expect(key.status == 400 && key.text.contains("PrivateKey"), "\(key.text)")
        }
    }

    @Test func aOneMinuteLeafIsRenewedBeforeItExpires() async throws {
        try await TestAgent.with(files: ["ca.json": #"{"connect": {"ca_config": {"leaf_cert_ttl": "1m"}}}"#]) { agent in
            let first = try await agent.request("GET", "/v1/agent/connect/ca/leaf/web")
            let firstBody = try JSONParser.parse(first.body)
            let index = try #require(first.header("X-Consul-Index"))
            // Valid from 1 min before issue to 1 min after: renewal comes at 60–90 % of those 2 minutes,
            // 12–48 s after issue, always before the old certificate expires.
            let renewed = try await agent.request("GET", "/v1/agent/connect/ca/leaf/web?index=\(index)&wait=90s", timeoutSeconds: 120)
            let body = try JSONParser.parse(renewed.body)
            #expect(Int(renewed.header("X-Consul-Index") ?? "") ?? 0 > Int(index) ?? 0)
            #expect(body["SerialNumber"] != firstBody["SerialNumber"])
            #expect(RFC3339Text.seconds(body["ValidAfter"]) <= Date().timeIntervalSince1970)
            #expect(Date().timeIntervalSince1970 < RFC3339Text.seconds(firstBody["ValidBefore"]), "renewed before the old one expired")
        }
    }
}

enum RFC3339Text {
    static func seconds(_ value: JSONValue?) -> Double {
        let formatter = ISO8601DateFormatter()
        return value?.stringValue.flatMap { formatter.date(from: $0) }?.timeIntervalSince1970 ?? .nan
    }
}
