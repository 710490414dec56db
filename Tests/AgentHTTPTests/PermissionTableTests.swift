import AgentHTTP
import ConnectdCore
import Foundation
import Logging
import Testing

/// The README's permission table (between `<!-- permissions:begin -->` and `<!-- permissions:end -->`)
/// is the contract: every row is sent with every token, and each answer's status must be the cell's.
/// Every route and method of the API must have a row, and every row a probe here.
@Suite struct PermissionTableTests {
    static let config = """
    {"node_name": "node1",
     "acl": {"enabled": true, "default_policy": "deny",
             "tokens": {"master": "root-secret", "agent": "agent-secret"},
             "static_tokens": [{"secret": "web-writer", "description": "service:write on web*",
                                "rules": {"service_prefix": {"web": {"policy": "write", "intentions": "write"}}}}]},
     "connect": {"proxy": {"allow_managed_root": true}},
     "services": [
       {"name": "web", "port": 8080, "check": {"id": "web-ttl", "ttl": "10m"}, "connect": {"proxy": {"command": ["/bin/sleep", "1000"],
                                                           "upstreams": [{"destination_name": "db", "local_bind_port": 9191}]}}},
       {"name": "db", "port": 8081, "connect": {"proxy": {"command": ["/bin/sleep", "1000"]}}}]}
    """

    /// The table's token columns, in order.
    static let columns = ["master", "agent", "service-write", "proxy", "anonymous", "bogus"]

    /// One request of the table: made fresh (with the master token for any set-up) before each cell.
    struct Probe: Sendable {
        var method: String
        var target: String
        var body: String?
    }

    typealias MakeProbe = @Sendable (TestAgent) async throws -> Probe

    static let master = [("X-Consul-Token", "root-secret")]

    /// The intention db → web, created when missing; its ID.
    static func intention(_ agent: TestAgent) async throws -> String {
        let list = try await agent.json("/v1/connect/intentions", headers: master)
        if case .array(let entries) = list,
           let found = entries.first(where: { $0["SourceName"] == .string("db") && $0["DestinationName"] == .string("web") }),
           let id = found["ID"]?.stringValue {
            return id
        }
        let created = try await agent.request("POST", "/v1/connect/intentions", headers: master,
                                              body: #"{"SourceName":"db","DestinationName":"web","Action":"allow"}"#)
        return try #require(try JSONParser.parse(created.body)["ID"]?.stringValue)
    }

    static func uri(_ agent: TestAgent, _ service: String) -> String {
        "spiffe://\(agent.agent.state.snapshot.ca.trustDomain)/ns/default/dc/dc1/svc/\(service)"
    }

    static func fixed(_ method: String, _ target: String, _ body: String? = nil) -> MakeProbe {
        { _ in Probe(method: method, target: target, body: body) }
    }

    /// README row text → how to send it.
    static let probes: [String: MakeProbe] = [
        "GET /v1/agent/self": fixed("GET", "/v1/agent/self"),
        "GET /v1/agent/metrics": fixed("GET", "/v1/agent/metrics"),
        "GET /v1/agent/checks": fixed("GET", "/v1/agent/checks"),
        "PUT /v1/agent/check/pass/web-ttl": fixed("PUT", "/v1/agent/check/pass/web-ttl"),
        "PUT /v1/agent/check/warn/web-ttl": fixed("PUT", "/v1/agent/check/warn/web-ttl"),
        "PUT /v1/agent/check/fail/web-ttl": fixed("PUT", "/v1/agent/check/fail/web-ttl"),
        "PUT /v1/agent/check/update/web-ttl": fixed("PUT", "/v1/agent/check/update/web-ttl", #"{"Status": "passing"}"#),
        "GET /v1/health/checks/web": fixed("GET", "/v1/health/checks/web"),
        "PUT /v1/agent/check/register": fixed("PUT", "/v1/agent/check/register", #"{"Name": "web extra", "ID": "web-extra-check", "ServiceID": "web", "TTL": "1m"}"#),
        "PUT /v1/agent/check/register (node check)": { _ in
            Probe(method: "PUT", target: "/v1/agent/check/register", body: #"{"Name": "disk", "TTL": "1m"}"#)
        },
        "PUT /v1/agent/check/deregister/web-extra-check": { agent in
            _ = try await agent.request("PUT", "/v1/agent/check/register", headers: master,
                                        body: #"{"Name": "web extra", "ID": "web-extra-check", "ServiceID": "web", "TTL": "1m"}"#)
            return Probe(method: "PUT", target: "/v1/agent/check/deregister/web-extra-check", body: nil)
        },
        "GET /v1/health/service/web": fixed("GET", "/v1/health/service/web"),
        "GET /v1/agent/metrics?format=prometheus": fixed("GET", "/v1/agent/metrics?format=prometheus"),
        "PUT /v1/agent/reload": fixed("PUT", "/v1/agent/reload"),
        "GET /v1/agent/services": fixed("GET", "/v1/agent/services"),
        "GET /v1/agent/service/web": fixed("GET", "/v1/agent/service/web"),
        "GET /v1/agent/service/web-proxy": fixed("GET", "/v1/agent/service/web-proxy"),
        "GET /v1/agent/service/db": fixed("GET", "/v1/agent/service/db"),
        "GET /v1/agent/service/db-proxy": fixed("GET", "/v1/agent/service/db-proxy"),
        "PUT /v1/agent/service/register (web-extra)":
            fixed("PUT", "/v1/agent/service/register", #"{"ID": "web-extra", "Name": "web-extra", "Port": 1}"#),
        "PUT /v1/agent/service/register (ID web-extra, name db)": { agent in
            _ = try await agent.request("PUT", "/v1/agent/service/register", headers: master, body: #"{"Name": "web-extra", "Port": 1}"#)
            return Probe(method: "PUT", target: "/v1/agent/service/register", body: #"{"ID": "web-extra", "Name": "db", "Port": 1}"#)
        },
        "PUT /v1/agent/service/deregister/web-extra": { agent in
            _ = try await agent.request("PUT", "/v1/agent/service/register", headers: master, body: #"{"Name": "web-extra", "Port": 1}"#)
            return Probe(method: "PUT", target: "/v1/agent/service/deregister/web-extra")
        },
        "PUT /v1/agent/service/deregister/db": { agent in
            // db comes from a config file; a removal through the API lasts until the next reload.
            _ = try await agent.request("PUT", "/v1/agent/reload", headers: master)
            return Probe(method: "PUT", target: "/v1/agent/service/deregister/db")
        },
        "PUT /v1/agent/service/deregister/web-proxy": fixed("PUT", "/v1/agent/service/deregister/web-proxy"),
        "GET /v1/agent/proxies": fixed("GET", "/v1/agent/proxies"),
        "GET /v1/agent/fleet": fixed("GET", "/v1/agent/fleet"),
        "PUT /v1/agent/fleet/remove-host/:node": fixed("PUT", "/v1/agent/fleet/remove-host/host-x"),
        "GET /v1/agent/connect/proxy/web-proxy": fixed("GET", "/v1/agent/connect/proxy/web-proxy"),
        "GET /v1/agent/connect/proxy/db-proxy": fixed("GET", "/v1/agent/connect/proxy/db-proxy"),
        "GET /v1/agent/connect/ca/roots": fixed("GET", "/v1/agent/connect/ca/roots"),
        "GET /v1/connect/ca/roots": fixed("GET", "/v1/connect/ca/roots"),
        "GET /v1/agent/connect/ca/leaf/web": fixed("GET", "/v1/agent/connect/ca/leaf/web"),
        "GET /v1/agent/connect/ca/leaf/db": fixed("GET", "/v1/agent/connect/ca/leaf/db"),
        "GET /v1/connect/ca/configuration": fixed("GET", "/v1/connect/ca/configuration"),
        "PUT /v1/connect/ca/configuration": fixed("PUT", "/v1/connect/ca/configuration", #"{"Config": {"LeafCertTTL": "72h"}}"#),
        "POST /v1/agent/connect/authorize (Target web)": { agent in
            Probe(method: "POST", target: "/v1/agent/connect/authorize",
                  body: #"{"Target": "web", "ClientCertURI": "\#(uri(agent, "db"))", "ClientCertSerial": "04"}"#)
        },
        "POST /v1/agent/connect/authorize (Target db)": { agent in
            Probe(method: "POST", target: "/v1/agent/connect/authorize",
                  body: #"{"Target": "db", "ClientCertURI": "\#(uri(agent, "web"))", "ClientCertSerial": "04"}"#)
        },
        "GET /v1/connect/intentions": fixed("GET", "/v1/connect/intentions"),
        "POST /v1/connect/intentions (db → web)": { agent in
            let id = try await intention(agent)
            _ = try await agent.request("DELETE", "/v1/connect/intentions/\(id)", headers: master)
            return Probe(method: "POST", target: "/v1/connect/intentions",
                         body: #"{"SourceName": "db", "DestinationName": "web", "Action": "allow"}"#)
        },
        "GET /v1/connect/intentions/match?by=destination&name=web": fixed("GET", "/v1/connect/intentions/match?by=destination&name=web"),
        "GET /v1/connect/intentions/check?source=db&destination=web": fixed("GET", "/v1/connect/intentions/check?source=db&destination=web"),
        "GET /v1/connect/intentions/:id (db → web)": { agent in
            Probe(method: "GET", target: "/v1/connect/intentions/\(try await intention(agent))")
        },
        "PUT /v1/connect/intentions/:id (db → web)": { agent in
            Probe(method: "PUT", target: "/v1/connect/intentions/\(try await intention(agent))",
                  body: #"{"SourceName": "db", "DestinationName": "web", "Action": "deny"}"#)
        },
        "DELETE /v1/connect/intentions/:id (db → web)": { agent in
            Probe(method: "DELETE", target: "/v1/connect/intentions/\(try await intention(agent))")
        },
        "GET /v1/health/connect/web": fixed("GET", "/v1/health/connect/web"),
        "GET /v1/health/connect/db": fixed("GET", "/v1/health/connect/db"),
        "GET /v1/catalog/connect/web": fixed("GET", "/v1/catalog/connect/web"),
        "GET /v1/catalog/connect/db": fixed("GET", "/v1/catalog/connect/db"),
        "GET /v1/catalog/services": fixed("GET", "/v1/catalog/services"),
    ]

    /// The README's rows: request text → status per column.
    static func readmeTable() throws -> [(String, [Int])] {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let begin = try #require(text.range(of: "<!-- permissions:begin -->"))
        let end = try #require(text.range(of: "<!-- permissions:end -->"))
        var rows: [(String, [Int])] = []
        for line in text[begin.upperBound..<end.lowerBound].split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            let request = cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            rows.append((request, cells.dropFirst().map { Int($0) ?? -1 }))
        }
        return rows
    }

    @Test func readmeTableMatchesTheAgent() async throws {
        let rows = try Self.readmeTable()
        #expect(rows.count >= 30)
        #expect(Set(rows.map(\.0)) == Set(Self.probes.keys), "README rows and probes differ")

        try await TestAgent.with(files: ["acl.json": Self.config]) { agent in
            let proxyToken = try #require(agent.agent.state.snapshot.proxies["web-proxy"]?.token)
            let tokens: [[(String, String)]] = [
                Self.master, [("X-Consul-Token", "agent-secret")], [("X-Consul-Token", "web-writer")],
                [("X-Consul-Token", proxyToken)], [], [("X-Consul-Token", "00000000-0000-4000-8000-000000000000")],
            ]
            var observed: [String] = []
            var mismatches: [String] = []
            for (request, expected) in rows {
                guard let make = Self.probes[request] else { continue }
                var statuses: [Int] = []
                for (column, token) in tokens.enumerated() {
                    let probe = try await make(agent)
                    let response = try await agent.request(probe.method, probe.target, headers: token, body: probe.body)
                    statuses.append(response.status)
                    if column == 5 && response.status == 403 {
                        #expect(response.text == "ACL not found", "\(request) with a bogus token")
                    }
                    if column < expected.count, expected[column] != response.status {
                        mismatches.append("\(request) as \(Self.columns[column]): README \(expected[column]), agent \(response.status) \(response.text.prefix(60))")
                    }
                }
                observed.append("| `\(request)` | " + statuses.map(String.init).joined(separator: " | ") + " |")
                #expect(expected.count == Self.columns.count, "\(request): \(expected.count) cells")
            }
            #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))\n\nWhat the agent answers:\n\(observed.joined(separator: "\n"))")

            // Every route and method is in the table.
            let table = AgentHTTPServer.routeTable(backend: agent.agent, logger: Logger(label: "routes"))
            let covered = Set(rows.map { row -> String in
                let parts = row.0.split(separator: " ")
                let path = String(parts[1].split(separator: "?").first ?? "")
                return "\(parts[0]) \(table.pattern(serving: path) ?? path)"
            })
            for endpoint in table.endpoints {
                #expect(covered.contains("\(endpoint.method) \(endpoint.pattern)"), "no README permission row for \(endpoint.method) \(endpoint.pattern)")
            }
        }
    }
}
