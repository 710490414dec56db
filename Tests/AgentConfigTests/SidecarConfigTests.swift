import AgentConfig
import Testing

@Suite struct SidecarConfigTests {
    @Test func aSidecarGetsConsulsNamesAndIsSupervisedWithoutAPort() throws {
        let dir = ConfigDirectory()
        dir.write("web.hcl", """
        service {
          name = "web"
          id   = "web-1"
          port = 8080
          connect {
            sidecar_service {
              proxy {
                upstreams {
                  destination_name = "db"
                  local_bind_port  = 9191
                }
                config { handshake_timeout_ms = 2000 }
              }
            }
          }
        }
        """)
        let web = try #require(try dir.load().services.first)
        #expect(web.proxyServiceID == "web-1-sidecar-proxy" && web.proxyServiceName == "web-sidecar-proxy")
        let proxy = try #require(web.managedProxy)
        #expect(proxy.isSupervised)
        #expect(proxy.upstreams.map(\.destinationName) == ["db"] && proxy.upstreams.first?.destinationType == "service")
        #expect(proxy.config["handshake_timeout_ms"] == .int(2000))
    }

    @Test func aPortOrManagedFalseMakesARegistrationOnly() throws {
        let dir = ConfigDirectory()
        dir.write("s.json", """
        {"services": [
          {"name": "a", "port": 1, "connect": {"sidecar_service": {"port": 21000}}},
          {"name": "b", "port": 2, "connect": {"sidecar_service": {"managed": false, "id": "b-envoy", "name": "b-envoy"}}},
          {"name": "c", "port": 3, "connect": {"sidecar_service": {"proxy": {"local_service_port": 3030}}}}]}
        """)
        let services = try dir.load().services
        #expect(services[0].managedProxy?.isSupervised == false && services[0].managedProxy?.sidecar?.port == 21000)
        #expect(services[1].managedProxy?.isSupervised == false && services[1].proxyServiceID == "b-envoy")
        #expect(services[2].managedProxy?.config["local_service_address"] == .string("127.0.0.1:3030"))
    }

    @Test(arguments: [
        (#"{"service": {"name": "a", "port": 1, "connect": {"proxy": {}, "sidecar_service": {}}}}"#,
         "x.json: service.connect.proxy: a service has either connect.proxy or connect.sidecar_service, not both"),
        (#"{"service": {"name": "a", "port": 1, "connect": {"native": true, "sidecar_service": {}}}}"#,
         "x.json: service.connect: Services that are Connect native may not have a sidecar"),
        (#"{"service": {"name": "a", "port": 1, "connect": {"sidecar_service": {"checks": []}}}}"#,
         "x.json: service.connect.sidecar_service.checks: a sidecar gets its listener and alias checks from connectd; remove checks"),
        (#"{"service": {"name": "a", "port": 1, "connect": {"sidecar_service": {"proxy": {"destination_service_name": "b"}}}}}"#,
         "x.json: service.connect.sidecar_service.proxy.destination_service_name: set by connectd from the service the sidecar belongs to"),
    ])
    func mistakesAreNamed(_ text: String, _ expected: String) {
        let problems = ConfigDirectory.problems(ofFile: "x.json", text)
        #expect(problems.contains(expected), "\(problems)")
    }
}
