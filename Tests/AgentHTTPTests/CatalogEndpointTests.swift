import AgentConfig
import ConnectdCore
import Foundation
import Testing

/// /v1/health/connect, /v1/catalog/connect, /v1/catalog/services from local state.
@Suite struct CatalogEndpointTests {
    static let config = """
    {"services": [
       {"name": "web", "port": 8080, "tags": ["v1"], "connect": {"proxy": {"command": ["/bin/true"],
          "upstreams": [{"destination_name": "db", "local_bind_port": 9191}]}}},
       {"name": "db", "port": 5432, "connect": {"proxy": {"command": ["/bin/true"]}}}]}
    """

    @Test func healthConnectListsTheProxyWithItsCheck() async throws {
        try await TestAgent.with(files: ["c.json": Self.config]) { agent in
            let response = try await agent.request("GET", "/v1/health/connect/db")
            #expect(response.status == 200 && response.header("X-Consul-Index") != nil)
            guard case .array(let entries) = try JSONParser.parse(response.body), let entry = entries.first else {
                Issue.record("no entries: \(response.text)")
                return
            }
            #expect(entries.count == 1)
            #expect(entry.objectMembers?.map(\.0) == ["Node", "Service", "Checks"])
            #expect(entry["Service"]?["Kind"] == .string("connect-proxy"))
            #expect(entry["Service"]?["ID"] == .string("db-proxy"))
            #expect(entry["Service"]?["ProxyDestination"] == .string("db"))
            #expect(entry["Node"]?["Address"] == .string("127.0.0.1"))
            let port = agent.agent.state.snapshot.proxies["db-proxy"]?.bindPort
            #expect(entry["Service"]?["Port"] == port.map { .int(Int64($0)) })
            #expect(entry["Checks"]?.objectMembers == nil)
            guard case .array(let checks)? = entry["Checks"], let check = checks.first else { Issue.record("no checks"); return }
            #expect(check["Name"] == .string("Connect Proxy Listening"))
            #expect(check["Status"] == .string("critical"), "/bin/true listens on nothing")
            #expect(try await agent.request("GET", "/v1/health/connect/db?passing").text == "[]")
            #expect(try await agent.request("GET", "/v1/health/connect/nosuch").text == "[]")
            let catalog = try JSONParser.parse(try await agent.request("GET", "/v1/catalog/connect/db").body)
            guard case .array(let catalogEntries) = catalog else { Issue.record("not a list"); return }
            #expect(catalogEntries.first?["ServiceKind"] == .string("connect-proxy"))
            #expect(catalogEntries.first?["ServiceProxyDestination"] == .string("db"))
            let services = try JSONParser.parse(try await agent.request("GET", "/v1/catalog/services").body)
            #expect(services.objectMembers?.map(\.0) == ["db", "db-proxy", "web", "web-proxy"])
            #expect(services["web"] == .array([.string("v1")]))
        }
    }

    /// The last differences found side by side with a real Consul 1.5.3 agent (issue 19, item 4).
    @Test func managedProxyEntriesHaveConsulsShape() async throws {
        try await TestAgent.with(files: ["c.json": Self.config]) { agent in
            let health = try JSONParser.parse(try await agent.request("GET", "/v1/health/connect/db").body)
            guard case .array(let entries) = health, let entry = entries.first else { Issue.record("no entries"); return }
            #expect(entry["Node"]?["Meta"] == .object([("consul-network-segment", .string(""))]))
            #expect(entry["Service"]?["Meta"] == .null)
            #expect(entry["Service"]?["Connect"] == .object([]))
            let port = try #require(agent.agent.state.snapshot.proxies["db-proxy"]).bindPort
            #expect(entry["Service"]?["Proxy"] == .object([("DestinationServiceName", .string("db")), ("LocalServicePort", .int(5432))]))
            #expect(entry["Service"]?["Port"] == .int(Int64(port)))

            let list = try await agent.request("GET", "/v1/agent/services")
            #expect(list.header("X-Consul-Index") == nil)
            let web = try #require(try JSONParser.parse(list.body)["web-proxy"])
            #expect(web.objectMembers?.map(\.0) == ["Kind", "ID", "Service", "Tags", "Meta", "Port", "Address", "Weights",
                                                    "EnableTagOverride", "ProxyDestination", "Proxy"])
            #expect(web["ProxyDestination"] == .string("web"))
            #expect(web["Proxy"] == .object([
                ("DestinationServiceName", .string("web")), ("LocalServicePort", .int(8080)),
                ("Upstreams", .array([.object([("DestinationType", .string("service")), ("DestinationName", .string("db")),
                                              ("LocalBindPort", .int(9191))])])),
            ]))
            // The single-service answer keeps the full proxy block (golden 70).
            let single = try JSONParser.parse(try await agent.request("GET", "/v1/agent/service/web-proxy").body)
            #expect(single["Proxy"]?["DestinationServiceID"] == .string("web"))
            #expect(single["ProxyDestination"] == nil)
        }
    }

    @Test func healthBlocksOnTheIndexAndPassesWhenTheListenerAccepts() async throws {
        // A proxy whose bind port has a listener: the check passes and a blocked query wakes.
        let listener = try TCPTestListener()
        let config = """
        {"services": [{"name": "db", "port": 5432, "connect": {"proxy": {"command": ["/bin/true"], "config": {"bind_port": \(listener.port)}}}}]}
        """
        try await TestAgent.with(files: ["c.json": config]) { agent in
            let first = try await agent.request("GET", "/v1/health/connect/db")
            let index = try #require(first.header("X-Consul-Index"))
            var body = try JSONParser.parse(first.body)
            if case .array(let entries) = body, entries.first?["Checks"].flatMap({ if case .array(let c) = $0 { c.first?["Status"] } else { nil } }) != .string("passing") {
                let woken = try await agent.request("GET", "/v1/health/connect/db?index=\(index)&wait=10s")
                #expect(woken.header("X-Consul-Index") != index)
                body = try JSONParser.parse(woken.body)
            }
            let passing = try JSONParser.parse(try await agent.request("GET", "/v1/health/connect/db?passing").body)
            guard case .array(let entries) = passing else { Issue.record("not a list"); return }
            #expect(entries.count == 1)
        }
    }
}

/// A listening TCP socket on 127.0.0.1 (accepts nothing; the kernel completes connects).
final class TCPTestListener: @unchecked Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        listen(fd, 16)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}
