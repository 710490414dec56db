import ConnectdCore
import Foundation
import Testing

/// Consul 1.3+'s registration style, from HCL: `connect { sidecar_service { } }` gets a running
/// `connectd proxy` (supervised like a managed proxy) and traffic flows web → db through both.
@Suite(.serialized) struct SidecarTests {
    @Test(.timeLimit(.minutes(2))) func hclSidecarsRunAndCarryTraffic() throws {
        let dir = makeTemporaryDirectory("sidecar")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (webPort, dbPort, upstreamPort, envoyPort) = (freeLoopbackPort(), freeLoopbackPort(), freeLoopbackPort(), freeLoopbackPort())
        let apps = [try startDemoHTTP("web", port: webPort), try startDemoHTTP("db", port: dbPort)]
        defer { for app in apps { app.terminate(); app.waitUntilExit() } }
        try """
        bind_addr = "127.0.0.1"
        connect {
          proxy { allow_managed_root = true }
        }

        service {
          name = "web"
          port = \(webPort)
          connect {
            sidecar_service {
              proxy {
                upstreams {
                  destination_name = "db"
                  local_bind_port  = \(upstreamPort)
                }
              }
            }
          }
        }

        service {
          name = "db"
          port = \(dbPort)
          connect { sidecar_service {} }
        }

        # Registered only: its own port, run by someone else.
        service {
          name = "cache"
          port = 6379
          connect {
            sidecar_service { port = \(envoyPort) }
          }
        }
        """.write(toFile: dir + "/mesh.hcl", atomically: true, encoding: .utf8)
        let agent = try AgentProcess(["-data-dir", dir + "/data", "-config-file", dir + "/mesh.hcl"])
        defer { #expect(agent.stop() == 0) }

        func through() -> String? {
            guard let response = try? SimpleHTTPClient.send(method: "GET", host: "127.0.0.1", port: upstreamPort, target: "/", timeoutSeconds: 5),
                  response.status == 200 else { return nil }
            return response.text
        }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, through() != "hello from db\n" { Thread.sleep(forTimeInterval: 0.2) }
        #expect(through() == "hello from db\n", "web's sidecar never reached db's; log:\n\(agent.log)")

        let services = try JSONParser.parse(try agent.get("/v1/agent/services").body)
        #expect(services.objectMembers?.map(\.0) == ["cache", "cache-sidecar-proxy", "db", "db-sidecar-proxy", "web", "web-sidecar-proxy"])
        #expect(services["web-sidecar-proxy"]?["Kind"] == .string("connect-proxy"))
        #expect(services["web-sidecar-proxy"]?["Proxy"]?["DestinationServiceName"] == .string("web"))
        #expect(services["web"]?["Connect"] == nil, "the parent carries no proxy block, as in Consul")
        #expect(services["cache-sidecar-proxy"]?["Port"] == .int(Int64(envoyPort)))
        // Served to Consul 1.3+ proxies through /v1/agent/service/:id.
        let single = try JSONParser.parse(try agent.get("/v1/agent/service/db-sidecar-proxy").body)
        #expect(single["Proxy"]?["DestinationServiceID"] == .string("db"))
        #expect(single["Proxy"]?["LocalServicePort"] == .int(Int64(dbPort)))

        // Supervised like managed proxies (the registration-only one is not run).
        let proxies = try JSONParser.parse(try agent.get("/v1/agent/proxies").body)
        guard case .array(let list) = proxies else { Issue.record("\(proxies)"); return }
        #expect(Set(list.compactMap { $0["ID"]?.stringValue }) == ["web-sidecar-proxy", "db-sidecar-proxy"])
        #expect(list.allSatisfy { $0["State"] == .string("running") }, "\(list)")
        guard let db = list.first(where: { $0["ID"] == .string("db-sidecar-proxy") }), case .int(let pid)? = db["Pid"] else {
            Issue.record("no db sidecar pid"); return
        }
        #expect(kill(pid_t(pid), SIGKILL) == 0)
        let back = Date().addingTimeInterval(20)
        var restarted = false
        while Date() < back {
            if case .array(let now)? = try? JSONParser.parse(try agent.get("/v1/agent/proxies").body),
               let entry = now.first(where: { $0["ID"] == .string("db-sidecar-proxy") }), entry["State"] == .string("running"),
               entry["Pid"] != .int(pid), through() == "hello from db\n" {
                restarted = true
                break
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(restarted, "a killed sidecar is restarted and carries traffic again")
        let health = try JSONParser.parse(try agent.get("/v1/health/connect/db").body)
        #expect(health[0]?["Checks"]?[0]?["Name"] == .string("Connect Sidecar Listening"))
    }
}
