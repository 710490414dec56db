import AgentConfig
import ConnectdCore
import Foundation
import Testing

/// authorize and intentions over real HTTP with ACLs disabled (goldens 40–53).
@Suite struct AuthorizeEndpointTests {
    func uri(_ agent: TestAgent, _ service: String, trustDomain: String? = nil) -> String {
        "spiffe://\(trustDomain ?? agent.agent.state.snapshot.ca.trustDomain)/ns/default/dc/dc1/svc/\(service)"
    }

    func authorize(_ agent: TestAgent, _ body: String, headers: [(String, String)] = []) async throws -> SimpleHTTPResponse {
        try await agent.request("POST", "/v1/agent/connect/authorize", headers: headers, body: body)
    }

    @Test func inputErrorsAndMethodsMatchTheGoldens() async throws {
        try await TestAgent.with { agent in
            let cases: [(String, String)] = [
                (#"{"ClientCertURI":"\#(uri(agent, "db"))","ClientCertSerial":"04"}"#, "Bad request: Target service must be specified"),
                (#"{"Target":"web","ClientCertURI":"not-a-uri","ClientCertSerial":"04"}"#, "Bad request: ClientCertURI not a valid Connect identifier"),
                (#"{"Target":"web"}"#, "Bad request: ClientCertURI not a valid Connect identifier"),
                (#"{"Target":"web","ClientCertURI":"spiffe://\#(agent.agent.state.snapshot.ca.trustDomain)"}"#, "Bad request: ClientCertURI not a valid Service identifier"),
                (#"{"Target":"#, "Bad request: Request decode failed: unexpected EOF"),
                ("", "Bad request: Request decode failed: EOF"),
            ]
            for (body, text) in cases {
                let response = try await authorize(agent, body)
                #expect(response.status == 400 && response.text == text, "\(body): \(response.text)")
            }
            for method in ["PUT", "GET"] {
                let response = try await agent.request(method, "/v1/agent/connect/authorize", body: "{}")
                #expect(response.status == 405 && response.text == "method \(method) not allowed" && response.header("Allow") == "OPTIONS,POST")
            }
        }
    }

    @Test func intentionsDecideAndTheDefaultAllowsWithACLsOff() async throws {
        try await TestAgent.with { agent in
            let good = try await authorize(agent, #"{"Target":"web","ClientCertURI":"\#(uri(agent, "db"))","ClientCertSerial":"04"}"#)
            #expect(good.status == 200 && good.header("X-Cache") == "HIT")
            #expect(try JSONParser.parse(good.body) == .object([("Authorized", .bool(true)), ("Reason", .string("ACLs disabled, access is allowed by default"))]))

            let created = try await agent.request("POST", "/v1/connect/intentions", body: #"{"SourceName":"db","DestinationName":"web","Action":"deny"}"#)
            #expect(created.status == 200)
            let id = try #require(try JSONParser.parse(created.body)["ID"]?.stringValue)
            let denied = try JSONParser.parse(try await authorize(agent, #"{"Target":"web","ClientCertURI":"\#(uri(agent, "db"))","ClientCertSerial":"04"}"#).body)
            #expect(denied["Authorized"] == .bool(false))
            #expect(denied["Reason"] == .string("Matched intention: DENY default/db => default/web (ID: \(id), Precedence: 9)"))
            // Another source falls to the default; a foreign trust domain is matched all the same (no trust-domain check).
            let other = try JSONParser.parse(try await authorize(agent, #"{"Target":"web","ClientCertURI":"\#(uri(agent, "api"))"}"#).body)
            #expect(other["Authorized"] == .bool(true))
            let foreign = try JSONParser.parse(try await authorize(agent,
                #"{"Target":"web","ClientCertURI":"\#(uri(agent, "db", trustDomain: "11111111-2222-3333-4444-555555555555.consul"))","ClientCertSerial":"0a:1b"}"#).body)
            #expect(foreign["Authorized"] == .bool(false))

            // A more specific allow beats a wildcard deny; deleting restores the default.
            let wildcard = try await agent.request("POST", "/v1/connect/intentions", body: #"{"SourceName":"*","DestinationName":"web","Action":"deny"}"#)
            let wildcardID = try #require(try JSONParser.parse(wildcard.body)["ID"]?.stringValue)
            #expect(try await agent.request("PUT", "/v1/connect/intentions/\(id)",
                                            body: #"{"SourceName":"db","DestinationName":"web","Action":"allow"}"#).status == 200)
            let allowed = try JSONParser.parse(try await authorize(agent, #"{"Target":"web","ClientCertURI":"\#(uri(agent, "db"))"}"#).body)
            #expect(allowed["Authorized"] == .bool(true))
            let api = try JSONParser.parse(try await authorize(agent, #"{"Target":"web","ClientCertURI":"\#(uri(agent, "api"))"}"#).body)
            #expect(api["Reason"] == .string("Matched intention: DENY default/* => default/web (ID: \(wildcardID), Precedence: 8)"))
            #expect(try await agent.request("DELETE", "/v1/connect/intentions/\(wildcardID)").text == "true")
            let back = try JSONParser.parse(try await authorize(agent, #"{"Target":"web","ClientCertURI":"\#(uri(agent, "api"))"}"#).body)
            #expect(back["Authorized"] == .bool(true))
        }
    }

    @Test func intentionsAPI() async throws {
        try await TestAgent.with { agent in
            let created = try await agent.request("POST", "/v1/connect/intentions",
                                                  body: #"{"SourceName":"web","DestinationName":"db","Action":"allow","Description":"d","Meta":{"k":"v"}}"#)
            let id = try #require(try JSONParser.parse(created.body)["ID"]?.stringValue)
            let one = try JSONParser.parse(try await agent.request("GET", "/v1/connect/intentions/\(id)").body)
            #expect(one.objectMembers?.map(\.0) == ["ID", "Description", "SourceNS", "SourceName", "DestinationNS", "DestinationName", "SourceType",
                                                    "Action", "DefaultAddr", "DefaultPort", "Meta", "Precedence", "CreatedAt", "UpdatedAt",
                                                    "CreateIndex", "ModifyIndex"])
            #expect(one["Precedence"] == .int(9) && one["SourceType"] == .string("consul") && one["Meta"] == .object([("k", .string("v"))]))
            let duplicate = try await agent.request("POST", "/v1/connect/intentions", body: #"{"SourceName":"web","DestinationName":"db","Action":"deny"}"#)
            #expect(duplicate.status == 400 && duplicate.text.hasPrefix("Bad request: duplicate intention found: ALLOW default/web => default/db (ID: \(id)"))
            let bad = try await agent.request("POST", "/v1/connect/intentions", body: #"{"SourceName":"we*","DestinationName":"db","Action":"allow"}"#)
            #expect(bad.status == 400 && bad.text.contains("wildcard"))
            let noAction = try await agent.request("POST", "/v1/connect/intentions", body: #"{"SourceName":"a","DestinationName":"db"}"#)
            #expect(noAction.status == 400 && noAction.text.contains("Action must be set to 'allow' or 'deny'"))
            _ = try await agent.request("POST", "/v1/connect/intentions", body: #"{"SourceName":"*","DestinationName":"db","Action":"deny"}"#)
            let list = try JSONParser.parse(try await agent.request("GET", "/v1/connect/intentions").body)
            guard case .array(let all) = list else { Issue.record("not a list"); return }
            #expect(all.map { $0["Precedence"] } == [.int(9), .int(8)])
            let match = try JSONParser.parse(try await agent.request("GET", "/v1/connect/intentions/match?by=destination&name=db").body)
            #expect(match["db"].map { if case .array(let a) = $0 { a.count } else { 0 } } == 2)
            let check = try JSONParser.parse(try await agent.request("GET", "/v1/connect/intentions/check?source=api&destination=db").body)
            #expect(check == .object([("Allowed", .bool(false))]))
            #expect(try await agent.request("GET", "/v1/connect/intentions/nope").status == 404)
            #expect(try await agent.request("GET", "/v1/connect/intentions/match?by=sideways&name=db").status == 400)
        }
    }

    @Test func aReloadedDefaultPolicyDecidesTheNextCall() async throws {
        let acl = #"{"acl": {"enabled": true, "default_policy": "POLICY", "tokens": {"master": "root-secret"}}}"#
        try await TestAgent.with(files: ["acl.json": acl.replacingOccurrences(of: "POLICY", with: "deny")]) { agent in
            let body = #"{"Target":"db","ClientCertURI":"\#(uri(agent, "web"))"}"#
            let token = [("X-Consul-Token", "root-secret")]
            for (policy, expected) in [("deny", false), ("allow", true), ("deny", false)] {
                try agent.writeConfig("acl.json", acl.replacingOccurrences(of: "POLICY", with: policy))
                #expect(try await agent.request("PUT", "/v1/agent/reload", headers: token).status == 200)
                let answer = try JSONParser.parse(try await authorize(agent, body, headers: token).body)
                #expect(answer == .object([("Authorized", .bool(expected)), ("Reason", .string("Default behavior configured by ACLs"))]), "\(policy)")
            }
        }
    }

    @Test func configIntentionsApplyOnReloadAndSurviveRestarts() async throws {
        try await TestAgent.with(files: ["i.json": #"{"intentions": [{"source_name": "web", "destination_name": "db", "action": "deny"}]}"#]) { agent in
            let body = #"{"Target":"db","ClientCertURI":"\#(uri(agent, "web"))"}"#
            #expect(try JSONParser.parse(try await authorize(agent, body).body)["Authorized"] == .bool(false))
            let list = try JSONParser.parse(try await agent.request("GET", "/v1/connect/intentions").body)
            guard case .array(let all) = list, let id = all.first?["ID"]?.stringValue else { Issue.record("no intention"); return }
            let delete = try await agent.request("DELETE", "/v1/connect/intentions/\(id)")
            #expect(delete.status == 400 && delete.text.contains("config file"))
            try agent.writeConfig("i.json", #"{"intentions": [{"source_name": "web", "destination_name": "db", "action": "allow"}]}"#)
            #expect(try await agent.request("PUT", "/v1/agent/reload").status == 200)
            #expect(try JSONParser.parse(try await authorize(agent, body).body)["Authorized"] == .bool(true))
            try agent.writeConfig("i.json", "{}")
            #expect(try await agent.request("PUT", "/v1/agent/reload").status == 200)
            #expect(try await agent.request("GET", "/v1/connect/intentions").text == "[]")
        }
    }
}
