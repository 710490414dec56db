import ConnectdCore
import Foundation
import Glibc
import Testing

/// Defects found when the agent was attacked (issue 12), each reproduced against the API.
@Suite struct SecurityTests {
    static let config = """
    {"acl": {"enabled": true, "default_policy": "deny", "tokens": {"master": "root-secret"},
             "static_tokens": [{"secret": "EVIL", "rules": {"service": {"evil": {"policy": "write"}}}}]},
     "connect": {"proxy": {"allow_managed_root": true}},
     "services": [{"name": "web", "port": 8080, "connect": {"proxy": {"command": ["/bin/sleep", "1000"]}}}]}
    """

    /// A token that may write only `evil` can neither replace `web` by registering its ID under
    /// another name nor deregister it; web and its proxy process stay as they were.
    @Test func aTokenCannotReplaceOrRemoveAServiceItDoesNotOwn() async throws {
        try await TestAgent.with(files: ["acl.json": Self.config]) { agent in
            let master = [("X-Consul-Token", "root-secret")]
            let evil = [("X-Consul-Token", "EVIL")]
            let before = try await Self.runningPid(agent, "web-proxy", master)

            let replace = try await agent.request("PUT", "/v1/agent/service/register", headers: evil,
                                                  body: #"{"ID": "web", "Name": "evil", "Port": 1}"#)
            #expect(replace.status == 403 && replace.text == "Permission denied")
            let remove = try await agent.request("PUT", "/v1/agent/service/deregister/web", headers: evil)
            #expect(remove.status == 403 && remove.text == "Permission denied")
            let removeProxy = try await agent.request("PUT", "/v1/agent/service/deregister/web-proxy", headers: evil)
            #expect(removeProxy.status == 403)

            let web = try await agent.json("/v1/agent/service/web", headers: master)
            #expect(web["Service"] == .string("web"))
            #expect(web["Port"] == .int(8080))
            #expect(try await Self.runningPid(agent, "web-proxy", master) == before)
            #expect(kill(pid_t(before), 0) == 0, "web's proxy process is alive")

            // EVIL keeps what it owns: a new service of its own, replaced and removed by itself.
            #expect(try await agent.request("PUT", "/v1/agent/service/register", headers: evil,
                                            body: #"{"ID": "e1", "Name": "evil", "Port": 2}"#).status == 200)
            #expect(try await agent.request("PUT", "/v1/agent/service/register", headers: evil,
                                            body: #"{"ID": "e1", "Name": "evil", "Port": 3}"#).status == 200)
            #expect(try await agent.request("PUT", "/v1/agent/service/deregister/e1", headers: evil).status == 200)
            // Replacing needs write on both names: the master may, re-registering web as web.
            #expect(try await agent.request("PUT", "/v1/agent/service/register", headers: evil,
                                            body: #"{"ID": "e2", "Name": "evil", "Port": 2}"#).status == 200)
            #expect(try await agent.request("PUT", "/v1/agent/service/register", headers: master,
                                            body: #"{"ID": "e2", "Name": "web", "Port": 2}"#).status == 200)
            #expect(try await agent.request("PUT", "/v1/agent/service/deregister/e2", headers: evil).status == 403,
                    "the check runs against the name the service has now")
        }
    }

    /// The PID of a running proxy, from the supervisor's view; waits (bounded) for it to run.
    static func runningPid(_ agent: TestAgent, _ id: String, _ headers: [(String, String)]) async throws -> Int {
        for _ in 0..<200 {
            let proxies = try await agent.json("/v1/agent/proxies", headers: headers)
            if case .array(let entries) = proxies,
               let entry = entries.first(where: { $0["ID"] == .string(id) }), entry["State"] == .string("running"),
               case .int(let pid)? = entry["Pid"] {
                return Int(pid)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw SimpleHTTPError(description: "\(id) never ran")
    }

    /// An invalid chunk size is bad framing (400 with the reason), not a body over the limit (413).
    @Test func badChunkFramingIsA400() async throws {
        try await TestAgent.with { agent in
            let raw = try await PipeliningTests.send(port: agent.port, """
            PUT /v1/agent/service/register HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n
            """)
            #expect(raw.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(raw)")
            #expect(raw.contains("Content-Type: text/plain"))
            #expect(raw.hasSuffix("Bad request: malformed request body: invalid chunk size"), "\(raw)")
            #expect(try await agent.json("/v1/agent/services") == .object([]))
        }
    }
}
