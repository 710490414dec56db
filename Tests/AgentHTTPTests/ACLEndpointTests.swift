import AgentConfig
import ConnectdCore
import Foundation
import Testing

/// ACLs enabled with default deny and a master token (goldens consul-1.5.3-acl/*).
@Suite struct ACLEndpointTests {
    static let config = """
    {"acl": {"enabled": true, "default_policy": "deny", "tokens": {"master": "root-secret"},
             "static_tokens": [{"secret": "web-writer", "description": "deploys web",
                                "rules": {"service": {"web": {"policy": "write"}}, "service_prefix": {"": {"policy": "read"}}}},
                               {"secret": "ops", "rules": {"operator": "write", "agent_prefix": {"": {"policy": "write"}},
                                                           "service_prefix": {"": {"policy": "write", "intentions": "write"}}}}]},
     "services": [
       {"name": "web", "port": 8080, "connect": {"proxy": {"command": ["/bin/true"], "upstreams": [{"destination_name": "db", "local_bind_port": 9191}]}}},
       {"name": "api", "port": 8081, "connect": {"proxy": {"command": ["/bin/true"]}}}]}
    """

    func uri(_ agent: TestAgent, _ service: String) -> String {
        "spiffe://\(agent.agent.state.snapshot.ca.trustDomain)/ns/default/dc/dc1/svc/\(service)"
    }

    func token(_ agent: TestAgent, _ proxy: String) throws -> String {
        try #require(agent.agent.state.snapshot.proxies[proxy]?.token)
    }

    @Test func goldenStatuses() async throws {
        try await TestAgent.with(files: ["acl.json": Self.config]) { agent in
            let proxyToken = try token(agent, "web-proxy")
            let master = [("X-Consul-Token", "root-secret")]
            let asProxy = [("X-Consul-Token", proxyToken)]
            let register = #"{"Name": "db", "Port": 5432}"#
            let denied = try await agent.request("PUT", "/v1/agent/service/register", body: register)
            #expect(denied.status == 403 && denied.text == "Permission denied")
            #expect(try await agent.request("PUT", "/v1/agent/service/register", headers: master, body: register).status == 200)
            #expect(try await agent.request("GET", "/v1/agent/connect/ca/roots").status == 200, "roots need no token")
            #expect(try await agent.request("GET", "/v1/agent/connect/ca/leaf/web").status == 403)
            #expect(try await agent.request("GET", "/v1/agent/connect/ca/leaf/web", headers: asProxy).status == 200)
            let otherLeaf = try await agent.request("GET", "/v1/agent/connect/ca/leaf/api", headers: asProxy)
            #expect(otherLeaf.status == 403 && otherLeaf.text == "Permission denied")
            #expect(try await agent.request("GET", "/v1/agent/connect/ca/leaf/web", headers: master).status == 200)
            #expect(try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy").status == 403)
            let own = try JSONParser.parse(try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy", headers: asProxy).body)
            #expect(own["Config"]?["telemetry"] != nil)
            let byMaster = try JSONParser.parse(try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy", headers: master).body)
            #expect(byMaster["Config"]?["telemetry"] == nil)
            #expect(byMaster["ContentHash"] != nil)
            let bogus = try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy", headers: [("X-Consul-Token", "00000000-0000-0000-0000-000000000000")])
            #expect(bogus.status == 403 && bogus.text == "ACL not found")
            #expect(try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy?token=\(proxyToken)").status == 200)
            #expect(try await agent.request("GET", "/v1/agent/connect/proxy/web-proxy", headers: [("Authorization", "Bearer \(proxyToken)")]).status == 200)

            let body = #"{"Target":"web","ClientCertURI":"\#(uri(agent, "db"))","ClientCertSerial":"04"}"#
            let noToken = try await agent.request("POST", "/v1/agent/connect/authorize", body: body)
            #expect(noToken.status == 403 && noToken.text == "Permission denied")
            let defaultDeny = try JSONParser.parse(try await agent.request("POST", "/v1/agent/connect/authorize", headers: asProxy, body: body).body)
            #expect(defaultDeny == .object([("Authorized", .bool(false)), ("Reason", .string("Default behavior configured by ACLs"))]))
            let masterDeny = try JSONParser.parse(try await agent.request("POST", "/v1/agent/connect/authorize", headers: master, body: body).body)
            #expect(masterDeny["Reason"] == .string("Default behavior configured by ACLs"))
            let otherTarget = try await agent.request("POST", "/v1/agent/connect/authorize", headers: asProxy,
                                                      body: #"{"Target":"api","ClientCertURI":"\#(uri(agent, "db"))"}"#)
            #expect(otherTarget.status == 403, "least privilege: Consul answered 200 here")
            let created = try await agent.request("POST", "/v1/connect/intentions", headers: master,
                                                  body: #"{"SourceName":"db","DestinationName":"web","Action":"allow"}"#)
            let id = try #require(try JSONParser.parse(created.body)["ID"]?.stringValue)
            let allowed = try JSONParser.parse(try await agent.request("POST", "/v1/agent/connect/authorize", headers: asProxy, body: body).body)
            #expect(allowed["Reason"] == .string("Matched intention: ALLOW default/db => default/web (ID: \(id), Precedence: 9)"))
            let badURI = try await agent.request("POST", "/v1/agent/connect/authorize", body: #"{"Target":"web","ClientCertURI":"not-a-uri"}"#)
            #expect(badURI.status == 400 && badURI.text == "Bad request: ClientCertURI not a valid Connect identifier", "input is checked before the token")
            let noTarget = try await agent.request("POST", "/v1/agent/connect/authorize", body: #"{"ClientCertURI":"\#(uri(agent, "db"))"}"#)
            #expect(noTarget.status == 400 && noTarget.text == "Bad request: Target service must be specified")
        }
    }

    @Test func proxyTokensAreLeastPrivilege() async throws {
        try await TestAgent.with(files: ["acl.json": Self.config]) { agent in
            let web = [("X-Consul-Token", try token(agent, "web-proxy"))]
            let master = [("X-Consul-Token", "root-secret")]
            #expect(try await agent.request("GET", "/v1/agent/connect/proxy/api-proxy", headers: web).status == 403)
            #expect(try await agent.request("GET", "/v1/agent/service/api-proxy", headers: web).status == 403)
            #expect(try await agent.request("GET", "/v1/agent/service/web-proxy", headers: web).status == 200)
            #expect(try await agent.request("GET", "/v1/agent/connect/proxy/api-proxy", headers: master).status == 200)
            #expect(try await agent.request("GET", "/v1/agent/connect/ca/leaf/api", headers: master).status == 200)
            #expect(try await agent.request("PUT", "/v1/agent/service/register", headers: web, body: #"{"Name":"web","Port":1}"#).status == 403)
            #expect(try await agent.request("PUT", "/v1/agent/reload", headers: web).status == 403)
            #expect(try await agent.request("GET", "/v1/connect/ca/configuration", headers: web).status == 403)
            #expect(try await agent.request("POST", "/v1/connect/intentions", headers: web,
                                            body: #"{"SourceName":"x","DestinationName":"web","Action":"allow"}"#).status == 403)
            #expect(try await agent.request("GET", "/v1/agent/self", headers: web).status == 403)
        }
    }

    @Test func rulesAndExistenceAreNotLeaked() async throws {
        try await TestAgent.with(files: ["acl.json": Self.config]) { agent in
            let writer = [("X-Consul-Token", "web-writer")]
            let ops = [("X-Consul-Token", "ops")]
            // service "web" write, every service read: can register web but not api.
            #expect(try await agent.request("PUT", "/v1/agent/service/register", headers: writer, body: #"{"Name":"web","Port":1}"#).status == 200)
            #expect(try await agent.request("PUT", "/v1/agent/service/register", headers: writer, body: #"{"Name":"api","Port":1}"#).status == 403)
            #expect(try await agent.request("GET", "/v1/agent/connect/ca/leaf/web", headers: writer).status == 200)
            #expect(try await agent.request("GET", "/v1/agent/connect/ca/leaf/api", headers: writer).status == 403)
            // An unknown proxy ID and a known one without rights answer the same.
            let unknown = try await agent.request("GET", "/v1/agent/connect/proxy/nosuch-proxy", headers: writer)
            let known = try await agent.request("GET", "/v1/agent/connect/proxy/api-proxy", headers: writer)
            #expect(unknown.status == 403 && known.status == 403 && unknown.text == known.text)
            #expect(try await agent.request("GET", "/v1/agent/connect/proxy/nosuch-proxy", headers: [("X-Consul-Token", "root-secret")]).status == 404)
            // Anonymous with default deny sees no services.
            #expect(try await agent.request("GET", "/v1/agent/services").text == "{}")
            // ops: operator and agent write.
            #expect(try await agent.request("PUT", "/v1/connect/ca/configuration", headers: ops, body: #"{"Config":{"LeafCertTTL":"48h"}}"#).status == 200)
            #expect(try await agent.request("PUT", "/v1/agent/reload", headers: ops).status == 200)
            #expect(try await agent.request("POST", "/v1/connect/intentions", headers: ops,
                                            body: #"{"SourceName":"web","DestinationName":"api","Action":"allow"}"#).status == 200)
            #expect(try await agent.request("POST", "/v1/connect/intentions", headers: writer,
                                            body: #"{"SourceName":"api","DestinationName":"web","Action":"allow"}"#).status == 403,
                    "service write alone does not grant intention write")
        }
    }
}
