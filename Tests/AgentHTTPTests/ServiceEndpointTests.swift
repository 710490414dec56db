import AgentConfig
import ConnectdCore
import Foundation
import Testing

let webWithProxy = """
{"service": {"name": "web", "port": 8080, "connect": {"proxy": {"config": {"foo": "bar"},
  "upstreams": [{"destination_name": "db", "local_bind_port": 9191}]}}}}
"""

@Suite struct ServiceEndpointTests {
    @Test func servicesListShowsServicesAndTheirProxies() async throws {
        try await TestAgent.with(files: ["web.json": webWithProxy]) { agent in
            let services = try await agent.json("/v1/agent/services")
            #expect(services.objectMembers?.map(\.0) == ["web", "web-proxy"])
            let web = try #require(services["web"])
            #expect(web.objectMembers?.map(\.0) == ["ID", "Service", "Tags", "Meta", "Port", "Address", "Weights", "EnableTagOverride", "Connect"])
            #expect(web["Tags"] == .array([]))
            #expect(web["Meta"] == .object([]))
            #expect(web["Connect"]?["Proxy"]?["ExecMode"] == .string("daemon"))
            #expect(web["Connect"]?["Proxy"]?["Config"] == .object([("foo", .string("bar"))]))
            let proxy = try #require(services["web-proxy"])
            #expect(proxy["Kind"] == .string("connect-proxy"))
            #expect(proxy["Service"] == .string("web-proxy"))
            // The lowest free port of the range (another test may hold 20000 at this moment).
            #expect(proxy["Port"] == .int(Int64(agent.agent.state.snapshot.proxies["web-proxy"]?.bindPort ?? 0)))
            if case .int(let port)? = proxy["Port"] { #expect((20000...20255).contains(port)) }
            #expect(proxy["Proxy"]?["DestinationServiceName"] == .string("web"))
            #expect(proxy["Proxy"]?["LocalServicePort"] == .int(8080))
        }
    }

    @Test func singleProxyServiceHasGoldenShapeAndContentHash() async throws {
        try await TestAgent.with(files: ["web.json": webWithProxy]) { agent in
            let response = try await agent.request("GET", "/v1/agent/service/web-proxy")
            #expect(response.status == 200)
            let body = try JSONParser.parse(response.body)
            #expect(body.objectMembers?.map(\.0) == ["Kind", "ID", "Service", "Tags", "Meta", "Port", "Address", "Weights",
                                                     "EnableTagOverride", "ContentHash", "Proxy"])
            #expect(body["Tags"] == .null)
            #expect(body["Weights"] == .object([("Passing", .int(0)), ("Warning", .int(0))]))
            #expect(response.header("X-Consul-ContentHash") == body["ContentHash"]?.stringValue)
            let config = try #require(body["Proxy"]?["Config"])
            #expect(config.objectMembers?.map(\.0) == ["bind_address", "bind_port", "foo", "local_service_address"])
            #expect(config["bind_address"] == .string("0.0.0.0"))
            #expect(config["local_service_address"] == .string("127.0.0.1:8080"))
            // Config files default the destination type to "service", as Consul's config builder does.
            #expect(body["Proxy"]?["Upstreams"] == .array([.object([("DestinationType", .string("service")), ("DestinationName", .string("db")),
                                                                    ("LocalBindPort", .int(9191))])]))
            let missing = try await agent.request("GET", "/v1/agent/service/nope")
            #expect(missing.status == 404)
            #expect(missing.text == "unknown service ID: nope")
        }
    }

    @Test func registerAcceptsPascalAndSnakeCaseAndDeregisterRemoves() async throws {
        try await TestAgent.with { agent in
            let pascal = try await agent.request("PUT", "/v1/agent/service/register",
                                                 body: #"{"ID": "api-1", "Name": "api", "Port": 9000, "Tags": ["a"], "Meta": {"m": "1"}, "Weights": {"Passing": 5, "Warning": 1}}"#)
            #expect(pascal.status == 200)
            #expect(pascal.body.isEmpty)
            let snake = try await agent.request("PUT", "/v1/agent/service/register",
                                                body: #"{"name": "cache", "port": 6379, "enable_tag_override": true, "address": "127.0.0.1"}"#)
            #expect(snake.status == 200)
            let services = try await agent.json("/v1/agent/services")
            #expect(services["api-1"]?["Weights"]?["Passing"] == .int(5))
            #expect(services["api-1"]?["Meta"] == .object([("m", .string("1"))]))
            #expect(services["cache"]?["EnableTagOverride"] == .bool(true))
            #expect(services["cache"]?["Address"] == .string("127.0.0.1"))

            #expect(try await agent.request("PUT", "/v1/agent/service/deregister/api-1").status == 200)
            #expect(try await agent.request("PUT", "/v1/agent/service/deregister/never-registered").status == 200)
            #expect(try await agent.json("/v1/agent/services").objectMembers?.map(\.0) == ["cache"])
        }
    }

    @Test func registerRejectsBadBodiesWithConsulTexts() async throws {
        try await TestAgent.with { agent in
            let cases: [(String, Int, String)] = [
                ("", 400, "Request decode failed: EOF"),
                (#"{"Name":"#, 400, "Request decode failed: unexpected EOF"),
                (#"{"Port": 80}"#, 400, "Missing service name"),
                (#"{"Name": "x", "Address": "0.0.0.0"}"#, 400, "Invalid service address"),
                (#"{"Name": "x", "Port": "eighty"}"#, 400, "Request decode failed: Port: expected a whole number, got a string"),
                (#"{"Name": "x", "Port": 1, "Connect": {"Proxy": {}}}"#, 500, "Bad request: Managed proxy registration via the API is disallowed."),
            ]
            for (body, status, text) in cases {
                let response = try await agent.request("PUT", "/v1/agent/service/register", body: body)
                #expect(response.status == status, "\(body)")
                #expect(response.text == text, "\(body)")
            }
            #expect(try await agent.json("/v1/agent/services") == .object([]))
        }
    }

    @Test func managedProxyRegistrationWhenAllowed() async throws {
        try await TestAgent.with(files: ["allow.json": #"{"connect": {"proxy": {"allow_managed_api_registration": true}}}"#]) { agent in
            let response = try await agent.request("PUT", "/v1/agent/service/register",
                                                   body: #"{"Name": "api", "Port": 8080, "Connect": {"Proxy": {"ExecMode": "daemon", "Command": ["/bin/true"]}}}"#)
            #expect(response.status == 200, "\(response.text)")
            let proxy = try await agent.json("/v1/agent/service/api-proxy")
            #expect(proxy["Proxy"]?["DestinationServiceID"] == .string("api"))
            let refused = try await agent.request("PUT", "/v1/agent/service/deregister/api-proxy")
            #expect(refused.status == 500)
            #expect(refused.text == "Bad request: Managed proxy service cannot be deregistered directly. Deregister the service that has a managed proxy to automatically deregister the managed proxy itself.")
            let badMode = try await agent.request("PUT", "/v1/agent/service/register",
                                                  body: #"{"Name": "api2", "Port": 1, "Connect": {"Proxy": {"ExecMode": "deamon"}}}"#)
            #expect(badMode.status == 400)
            #expect(badMode.text.contains(#"invalid exec mode "deamon""#))
            #expect(try await agent.request("PUT", "/v1/agent/service/deregister/api").status == 200)
            #expect(try await agent.json("/v1/agent/services") == .object([]))
        }
    }

    @Test func selfReportsConfig() async throws {
        try await TestAgent.with(files: ["dc.json": #"{"datacenter": "east"}"#]) { agent in
            let body = try await agent.json("/v1/agent/self")
            #expect(body["Config"]?["Datacenter"] == .string("east"))
            #expect(body["Config"]?["NodeName"] == .string("testnode"))
            #expect(body["Config"]?["Version"] == .string("1.5.3"))
            #expect(body["Config"]?["Server"] == .bool(false))
            #expect(body["Config"]?["NodeID"]?.stringValue?.count == 36)
            #expect(body["DebugConfig"]?["ConnectProxyBindMinPort"] == .int(20000))
            #expect(body["Stats"]?["connectd"]?["version"] == .string("test"))
        }
    }

    @Test func reloadAppliesValidConfigAndKeepsTheOldOneOnErrors() async throws {
        try await TestAgent.with(files: ["web.json": webWithProxy]) { agent in
            let token = agent.agent.state.snapshot.proxies["web-proxy"]?.token
            try agent.writeConfig("db.json", #"{"service": {"name": "db", "port": 5432}}"#)
            #expect(try await agent.request("PUT", "/v1/agent/reload").status == 200)
            #expect(try await agent.json("/v1/agent/services").objectMembers?.map(\.0) == ["db", "web", "web-proxy"])
            #expect(agent.agent.state.snapshot.proxies["web-proxy"]?.token == token)

            try agent.writeConfig("bad.json", #"{"service": {"name": "x", "port": 1, "connect": {"proxy": {"exec_mode": "deamon"}}}}"#)
            let refused = try await agent.request("PUT", "/v1/agent/reload")
            #expect(refused.status == 500)
            #expect(refused.text.contains("bad.json: service.connect.proxy.exec_mode: invalid exec mode \"deamon\""))
            #expect(try await agent.json("/v1/agent/services").objectMembers?.map(\.0) == ["db", "web", "web-proxy"])
        }
    }
}
