import AgentConfig
import ConnectdCore
import Foundation
import Glibc
import Testing

@Suite struct ConfigLoadingTests {
    @Test func readsEveryAgentKey() throws {
        let dir = ConfigDirectory()
        dir.write("agent.json", """
        {
          "datacenter": "East-1", "node_name": "n1", "data_dir": "/var/lib/connectd",
          "client_addr": "127.0.0.2", "bind_addr": "10.0.0.5", "log_level": "DEBUG", "log_json": true,
          "ports": {"http": 8600, "proxy_min_port": 21000, "proxy_max_port": 21010},
          "connect": {
            "enabled": true,
            "proxy": {"allow_managed_root": true, "allow_managed_api_registration": true},
            "proxy_defaults": {"exec_mode": "daemon", "daemon_command": ["/usr/bin/p", "-x"],
                               "script_command": ["/usr/bin/s"], "config": {"connect_timeout_ms": 500}}
          },
          "limits": {"http_max_request_bytes": 4096}
        }
        """)
        let config = try dir.load(requireDataDir: true)
        #expect(config.datacenter == "east-1")
        #expect(config.nodeName == "n1")
        #expect(config.dataDir == "/var/lib/connectd")
        #expect(config.clientAddr == "127.0.0.2")
        #expect(config.bindAddr == "10.0.0.5")
        #expect(config.logLevel == .debug)
        #expect(config.logJSON)
        #expect(config.httpPort == 8600)
        #expect(config.proxyPortRange == 21000...21010)
        #expect(config.allowManagedRoot)
        #expect(config.allowManagedAPIRegistration)
        #expect(config.proxyDefaults.execMode == .daemon)
        #expect(config.proxyDefaults.daemonCommand == ["/usr/bin/p", "-x"])
        #expect(config.proxyDefaults.scriptCommand == ["/usr/bin/s"])
        #expect(config.proxyDefaults.config["connect_timeout_ms"] == .int(500))
        #expect(config.httpMaxRequestBytes == 4096)
    }

    @Test func supervisionSettingsLayer() throws {
        let dir = ConfigDirectory()
        dir.write("a.json", """
        {"connect": {"proxy_defaults": {"restart": {"immediate": 1, "backoff_base": "500ms", "backoff_max": "30s",
                                                    "healthy_after": "1m", "permanent_exit_codes": [78, 64]},
                                        "stop_signal": "INT", "stop_grace": "10s", "env_passthrough": ["HTTP_PROXY"],
                                        "logs": {"max_bytes": 1048576, "max_files": 3}}},
         "service": {"name": "web", "port": 1, "connect": {"proxy": {"stop_grace": "1s", "restart": {"immediate": 0}}}}}
        """)
        let config = try dir.load()
        let proxy = try #require(config.services.first?.managedProxy)
        let resolved = ResolvedSupervision(config.proxyDefaults.supervision.overlaid(by: proxy.supervision))
        #expect(resolved.immediateRestarts == 0)
        #expect(resolved.backoffBase == .milliseconds(500))
        #expect(resolved.backoffMax == .seconds(30))
        #expect(resolved.healthyAfter == .seconds(60))
        #expect(resolved.permanentExitCodes == [78, 64])
        #expect(resolved.stopSignal == 2)
        #expect(resolved.stopGrace == .seconds(1))
        #expect(resolved.environmentPassthrough == ["HTTP_PROXY"])
        #expect(resolved.logMaxBytes == 1 << 20)
        #expect(resolved.logMaxFiles == 3)
        #expect(ResolvedSupervision().stopGrace == .seconds(5))
    }

    @Test func defaultsAreSafe() throws {
        let config = try ConfigDirectory().load()
        #expect(config.clientAddr == "127.0.0.1")
        #expect(config.httpPort == 8500)
        #expect(config.datacenter == "dc1")
        #expect(config.nodeName == "testhost")
        #expect(config.proxyPortRange == 20000...20255)
        #expect(!config.allowManagedRoot)
        #expect(!config.allowManagedAPIRegistration)
        #expect(config.logLevel == .info)
        #expect(!config.alwaysPretty)
    }

    @Test func devModeDefaults() throws {
        let config = try ConfigDirectory().load(dev: true, requireDataDir: true)
        #expect(config.dev)
        #expect(config.logLevel == .debug)
        #expect(config.bindAddr == "127.0.0.1")
        #expect(config.alwaysPretty)
        #expect(config.dataDir == nil)
    }

    @Test func filesMergeInLexicalOrderAndFlagsWin() throws {
        let dir = ConfigDirectory()
        dir.write("b.json", #"{"datacenter": "second", "service": {"name": "b", "port": 2}}"#)
        dir.write("a.json", #"{"datacenter": "first", "node_name": "from-a", "service": {"name": "a", "port": 1}}"#)
        dir.write("c.txt", "not json, ignored")
        dir.write(".hidden.json", "{broken")
        var flags = ConfigFragment()
        flags.nodeName = "from-flag"
        let config = try dir.load(flags)
        #expect(config.datacenter == "second")
        #expect(config.nodeName == "from-flag")
        #expect(config.services.map(\.id) == ["a", "b"])
    }

    @Test func proxyDefaultsConfigMergesKeyByKey() throws {
        let dir = ConfigDirectory()
        dir.write("1.json", #"{"connect": {"proxy_defaults": {"config": {"a": 1, "b": 1}}}}"#)
        dir.write("2.json", #"{"connect": {"proxy_defaults": {"config": {"b": 2}}}}"#)
        let config = try dir.load()
        #expect(config.proxyDefaults.config == .object([("a", .int(1)), ("b", .int(2))]))
    }

    @Test func servicesDecodeWithManagedProxies() throws {
        let (fragment, problems) = fragment("""
        {"services": [{"id": "web-1", "name": "web", "port": 8080, "address": "10.1.1.1", "tags": ["a"],
                       "meta": {"k": "v"}, "enable_tag_override": true, "weights": {"passing": 3, "warning": 2},
                       "connect": {"proxy": {"exec_mode": "daemon", "command": ["/bin/p"], "config": {"x": {"y": 1}},
                                   "upstreams": [{"destination_type": "prepared_query", "destination_name": "q",
                                                  "datacenter": "dc2", "local_bind_address": "127.0.0.2",
                                                  "local_bind_port": 1234, "config": {"connect_timeout_ms": 5}}]}}}]}
        """)
        #expect(problems.isEmpty, "\(problems)")
        let service = try #require(fragment?.services.first?.definition)
        #expect(service.id == "web-1")
        #expect(service.proxyServiceID == "web-1-proxy")
        #expect(service.proxyServiceName == "web-proxy")
        #expect(service.weights == ServiceWeights(passing: 3, warning: 2))
        let proxy = try #require(service.managedProxy)
        #expect(proxy.execMode == .daemon)
        #expect(proxy.command == ["/bin/p"])
        #expect(proxy.config["x"] == .object([("y", .int(1))]))
        let upstream = try #require(proxy.upstreams.first)
        #expect(upstream.destinationType == "prepared_query")
        #expect(upstream.localBindPort == 1234)
        #expect(upstream.config?["connect_timeout_ms"] == .int(5))
    }

    @Test func legacyConfigUpstreamsAreConverted() throws {
        let (fragment, problems) = fragment("""
        {"service": {"name": "web", "port": 1, "connect": {"proxy": {"config": {"keep": true, "upstreams": [
            {"destination_name": "db", "destination_type": "bogus", "destination_datacenter": "dc9",
             "local_bind_port": 9191, "connect_timeout_ms": 250},
            {"destination_name": 7}
        ]}}}}}
        """)
        #expect(problems.isEmpty, "\(problems)")
        let proxy = try #require(fragment?.services.first?.definition.managedProxy)
        #expect(proxy.config == .object([("keep", .bool(true))]))
        #expect(proxy.upstreams.count == 1)
        #expect(proxy.upstreams[0].destinationType == "service")
        #expect(proxy.upstreams[0].datacenter == "dc9")
        #expect(proxy.upstreams[0].localBindPort == 9191)
        #expect(proxy.upstreams[0].config == .object([("connect_timeout_ms", .int(250))]))
    }

    @Test func legacyUpstreamsIgnoredWhenFirstClassGiven() throws {
        let (fragment, _) = fragment("""
        {"service": {"name": "web", "port": 1, "connect": {"proxy": {
            "config": {"upstreams": [{"destination_name": "old"}]},
            "upstreams": [{"destination_name": "new", "local_bind_port": 1}]}}}}
        """)
        let proxy = try #require(fragment?.services.first?.definition.managedProxy)
        #expect(proxy.upstreams.map(\.destinationName) == ["new"])
        #expect(proxy.config == .object([]))
    }

    @Test func apiBodiesMatchKeysLeniently() throws {
        for body in [
            #"{"Name": "web", "Port": 80, "Connect": {"Proxy": {"ExecMode": "daemon", "Upstreams": [{"DestinationName": "db", "LocalBindPort": 1}]}}}"#,
            #"{"name": "web", "port": 80, "connect": {"proxy": {"exec_mode": "daemon", "upstreams": [{"destination_name": "db", "local_bind_port": 1}]}}}"#,
            #"{"NAME": "web", "port": 80, "Unknown": 1, "connect": {"proxy": {"execmode": "daemon", "upstreams": [{"destinationname": "db", "localbindport": 1}]}}}"#,
        ] {
            let sink = ProblemSink(file: nil)
            let reader = try #require(ObjectReader.object(try JSONParser.parse(body), path: "", sink: sink, matching: .lenient))
            let definition = try #require(ServiceDefinitionDecoder.decode(reader, origin: .api))
            #expect(sink.problems.isEmpty, "\(sink.problems)")
            #expect(definition.name == "web")
            #expect(definition.managedProxy?.execMode == .daemon)
            #expect(definition.managedProxy?.upstreams.first?.destinationName == "db")
        }
    }

    @Test func apiRegistrationMayOmitThePort() throws {
        let sink = ProblemSink(file: nil)
        let reader = try #require(ObjectReader.object(try JSONParser.parse(#"{"Name": "w", "Connect": {"Proxy": {}}}"#),
                                                      path: "", sink: sink, matching: .lenient))
        #expect(ServiceDefinitionDecoder.decode(reader, origin: .api) != nil)
        #expect(sink.problems.isEmpty)
    }

    @Test func missingFilesAndDirectoriesAreReported() {
        #expect(throws: ConfigErrors.self) {
            try ConfigLoader.load(sources: ConfigSources(files: ["/nonexistent/x.json"], directories: ["/nonexistent-dir"]),
                                  dev: false, requireDataDir: false, hostName: "h")
        }
        do {
            _ = try ConfigLoader.load(sources: ConfigSources(files: ["/nonexistent/x.json"], directories: ["/nonexistent-dir"]),
                                      dev: false, requireDataDir: false, hostName: "h")
        } catch {
            #expect(error.problems.map(\.description) == [
                "/nonexistent-dir: config directory does not exist",
                "/nonexistent/x.json: no such file",
            ])
        }
    }

    @Test func hugeFilesAreRefused() {
        let dir = ConfigDirectory()
        dir.write("huge.json", "{\"datacenter\": \"" + String(repeating: "a", count: ConfigLoader.maximumFileBytes) + "\"}")
        #expect(dir.problems().first?.hasSuffix("huge.json: file is larger than 16 MiB") == true)
    }

    /// A FIFO, a socket or a directory named `*.json` is refused by name at once; reading one used to
    /// hang (FIFO) or fail with an opaque Foundation error (directory). A symlink to a regular file is read.
    @Test func onlyRegularFilesAreRead() throws {
        let dir = ConfigDirectory()
        dir.write("real.txt", #"{"datacenter": "linked"}"#)
        #expect(mkfifo(dir.path + "/fifo.json", 0o600) == 0)
        #expect(mkdir(dir.path + "/x.json", 0o700) == 0)
        #expect(symlink(dir.path + "/real.txt", dir.path + "/link.json") == 0)
        let socket = try UnixSocketFile(path: dir.path + "/sock.json")
        defer { socket.close() }
        #expect(dir.problems() == [
            "\(dir.path)/fifo.json: not a regular file (a FIFO)",
            "\(dir.path)/sock.json: not a regular file (a socket)",
            "\(dir.path)/x.json: not a regular file (a directory)",
        ])
        try FileManager.default.removeItem(atPath: dir.path + "/fifo.json")
        try FileManager.default.removeItem(atPath: dir.path + "/sock.json")
        try FileManager.default.removeItem(atPath: dir.path + "/x.json")
        #expect(try dir.load().datacenter == "linked")
    }
}
