import AgentConfig
import Testing

/// Every validation rule, with the exact text a user sees.
@Suite struct ValidationTests {
    @Test(arguments: [
        (#"{"service": {"name": "web", "port": 1, "connect": {"proxy": {"exec_mode": "deamon"}}}}"#,
         #"web.json: service.connect.proxy.exec_mode: invalid exec mode "deamon" (expected daemon or script)"#),
        (#"{"service": {"name": "web", "connect": {"proxy": {}}}}"#,
         "web.json: service.port: Services with a Connect managed proxy must have a port set"),
        (#"{"service": {"name": "web", "port": 1, "connect": {"native": true, "proxy": {}}}}"#,
         "web.json: service.connect: Services that are Connect native may not have a proxy configuration"),
        (#"{"service": {"port": 1}}"#, "web.json: service.name: missing service name"),
        (#"{"services": [{"name": "a"}, {"name": "b", "port": "80"}]}"#,
         "web.json: services[1].port: expected a whole number, got a string"),
        (#"{"service": {"name": "a", "port": 70000}}"#, "web.json: service.port: 70000 is out of range (0-65535)"),
        (#"{"service": {"name": "a", "prot": 1}}"#, #"web.json: service.prot: unknown key "prot" (did you mean "port"?)"#),
        (#"{"service": {"name": "a", "check": {"interval": "10s"}}}"#,
         "web.json: service.check: a check needs one of tcp, http, ttl or args"),
        (#"{"service": {"name": "a", "check": {"tcp": "127.0.0.1:80"}}}"#,
         #"web.json: service.check.interval: a tcp check needs an interval (e.g. "10s")"#),
        (#"{"service": {"name": "a", "check": {"tcp": "127.0.0.1:80", "ttl": "5s", "interval": "1s"}}}"#,
         "web.json: service.check: a check has exactly one of tcp, http, ttl or args (this one has tcp, ttl)"),
        (#"{"service": {"name": "a", "check": {"args": ["/bin/true"], "interval": "10s"}}}"#,
         "web.json: service.check.args: Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true"),
        (#"{"service": {"name": "a", "check": {"http": "localhost:80", "interval": "10s"}}}"#,
         #"web.json: service.check.http: invalid URL "localhost:80" (http:// or https://)"#),
        (#"{"service": {"name": "a", "check": {"ttl": "10s", "status": "ok"}}}"#,
         #"web.json: service.check.status: invalid status "ok" (passing, warning or critical)"#),
        (#"{"service": {"name": "a", "check": {"ttl": "10s", "grpc": "x:1"}}}"#,
         "web.json: service.check.grpc: not supported by connectd (tcp, http, ttl and args checks are)"),
        (#"{"service": {"name": "a", "checks": [{"ttl": "10s", "intreval": "1s"}]}}"#,
         #"web.json: service.checks[0].intreval: unknown key "intreval" (did you mean "interval"?)"#),
        (#"{"check": {"name": "disk", "ttl": "10s", "service_id": "nosuch"}}"#,
         #"web.json: check.service_id: no service with ID "nosuch" in the configuration"#),
        (#"{"service": {"name": "a", "kind": "connect-proxy"}}"#,
         #"web.json: service.kind: service kind "connect-proxy" cannot be registered directly; connectd creates connect-proxy services for managed proxies itself"#),
        (#"{"service": {"name": "a", "port": 1, "connect": {"proxy": {"config": {"bind_port": "x"}}}}}"#,
         #"web.json: service.connect.proxy.config.bind_port: expected a port number (1-65535), got "x""#),
        (#"{"service": {"name": "a", "port": 1, "connect": {"proxy": {"upstreams": [{"destination_type": "dns"}]}}}}"#,
         #"web.json: service.connect.proxy.upstreams[0].destination_type: invalid destination type "dns" (expected service or prepared_query)"#),
        (#"{"service": {"name": "a", "port": 1, "connect": {"proxy": {"command": "p"}}}}"#,
         "web.json: service.connect.proxy.command: expected an array of strings, got a string"),
        (#"{"service": {"name": "a", "meta": {"consul-x": "1"}}}"#,
         #"web.json: service.meta.consul-x: meta keys may not start with "consul-" (reserved)"#),
        (#"{"ports": {"proxy_min_port": 30000, "proxy_max_port": 20000}}"#,
         "web.json: ports: proxy_min_port must be less than proxy_max_port. To disable, set both to zero."),
        (#"{"ports": {"dns": 53}}"#, #"web.json: ports.dns: unknown key "dns""#),
        (#"{"ports": {"http": -1}}"#, "web.json: ports.http: -1 is out of range (0-65535)"),
        (#"{"log_level": "loud"}"#, #"web.json: log_level: invalid log level "loud" (expected trace, debug, info, warn or err)"#),
        (#"{"client_addr": "localhost"}"#, #"web.json: client_addr: invalid IP address "localhost""#),
        (#"{"bind_addr": "300.1.1.1"}"#, #"web.json: bind_addr: invalid IP address "300.1.1.1""#),
        (#"{"datacenter": "dc 1"}"#, #"web.json: datacenter: invalid datacenter name "dc 1" (letters, digits, '-' and '_' only)"#),
        (#"{"connect": {"proxy_defaults": {"exec_mode": "cron"}}}"#,
         #"web.json: connect.proxy_defaults.exec_mode: invalid exec mode "cron" (expected daemon or script)"#),
        (#"{"connect": {"proxy": {"allow_managed_root": "yes"}}}"#,
         "web.json: connect.proxy.allow_managed_root: expected a boolean (true or false), got a string"),
        (#"{"connect": {"enabled": false}, "service": {"name": "a", "port": 1, "connect": {"proxy": {}}}}"#,
         "web.json: service.connect.proxy: managed proxies need Connect; remove connect.enabled=false or the proxy"),
        (#"{"limits": {"http_max_request_bytes": 10}}"#, "web.json: limits.http_max_request_bytes: 10 is out of range (1024-1073741824)"),
        (#"{"service": "web"}"#, "web.json: service: expected an object, got a string"),
        (#"{"connect": {"proxy_defaults": {"env_passthrough": ["NOTIFY_SOCKET"]}}}"#,
         "web.json: connect.proxy_defaults.env_passthrough: NOTIFY_SOCKET belongs to connectd's service manager and is never passed to proxies"),
        (#"{"connect": {"proxy_defaults": {"stop_grace": "5 s"}}}"#,
         #"web.json: connect.proxy_defaults.stop_grace: invalid duration "5 s" (Go syntax, e.g. 300ms, 5s, 1m30s)"#),
        (#"{"connect": {"proxy_defaults": {"stop_signal": "SIGFOO"}}}"#,
         #"web.json: connect.proxy_defaults.stop_signal: unknown signal "SIGFOO" (expected one of SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2)"#),
        (#"{"service": {"name": "a", "port": 1, "connect": {"proxy": {"restart": {"backoff_max": "soon"}}}}}"#,
         #"web.json: service.connect.proxy.restart.backoff_max: invalid duration "soon" (Go syntax, e.g. 300ms, 5s, 1m30s)"#),
        (#"{"connect": {"proxy_defaults": {"restart": {"permanent_exit_codes": [300]}}}}"#,
         "web.json: connect.proxy_defaults.restart.permanent_exit_codes: expected an array of exit codes (0-255)"),
        (#"{"connect": {"proxy_defaults": {"log_sink": "syslog"}}}"#,
         #"web.json: connect.proxy_defaults.log_sink: invalid log sink "syslog" (expected file, journal or auto)"#),
        (#"{"connect": {"proxy_defaults": {"logs": {"max_files": 0}}}}"#,
         "web.json: connect.proxy_defaults.logs.max_files: 0 is out of range (1-1000)"),
        (#"["not", "an", "object"]"#, "web.json: expected an object, got an array"),
        ("{\n  \"datacenter\": \"dc1\",\n}", "web.json: invalid JSON: line 3, column 1: unexpected character '}', expected a quoted key"),
    ])
    func reportsProblem(document: String, expected: String) {
        let problems = ConfigDirectory.problems(ofFile: "web.json", document)
        #expect(problems.contains(expected), "got \(problems)")
    }

    @Test func reportsEveryProblemAtOnce() {
        let dir = ConfigDirectory()
        dir.write("a.json", #"{"datacenter": "x y", "bogus": 1, "service": {"name": "web", "port": 1, "connect": {"proxy": {"exec_mode": "deamon"}}}}"#)
        dir.write("b.json", #"{"log_level": "nope", "service": {"name": "web", "port": 2}}"#)
        let problems = dir.problems().map { $0.replacingOccurrences(of: dir.path + "/", with: "") }
        #expect(problems.count == 5, "\(problems)")
        #expect(problems.contains(#"a.json: bogus: unknown key "bogus""#))
        #expect(problems.contains(#"b.json: service.id: duplicate service ID "web" is already used by the service at a.json: service"#))
    }

    @Test func proxyIDMayNotCollideWithAService() {
        let dir = ConfigDirectory()
        dir.write("a.json", #"{"services": [{"name": "web", "port": 1, "connect": {"proxy": {}}}, {"name": "web-proxy", "port": 2}]}"#)
        #expect(dir.problems().contains { $0.contains(#"services[1].id: duplicate service ID "web-proxy" is already used"#) })
    }

    @Test func dataDirIsRequiredOutsideDev() {
        let dir = ConfigDirectory()
        #expect(dir.problems(requireDataDir: true) == [
            "data_dir: data_dir must be set (in a config file or with -data-dir); -dev uses a temporary directory",
        ])
        #expect(dir.problems(dev: true, requireDataDir: true).isEmpty)
    }

    @Test func flagProblemsNameTheFlags() {
        var flags = ConfigFragment()
        flags.clientAddr = "nope"
        do {
            _ = try ConfigDirectory().load(flags)
            Issue.record("expected a problem")
        } catch {
            #expect(error.problems.map(\.description) == [#"command-line flags: client_addr: invalid IP address "nope""#])
        }
    }

    @Test func portRangeCanBeDisabled() throws {
        let dir = ConfigDirectory()
        dir.write("a.json", #"{"ports": {"proxy_min_port": 0, "proxy_max_port": 0}}"#)
        #expect(try dir.load().proxyPortRange == nil)
    }

    @Test func ipAddressSyntax() {
        for valid in ["127.0.0.1", "0.0.0.0", "::", "::1", "fe80::1", "2001:db8::8a2e:370:7334", "::ffff:10.0.0.1"] {
            #expect(IPAddressText.isValid(valid), "\(valid)")
        }
        for invalid in ["", "1.2.3", "1.2.3.4.5", "01.2.3.4", "256.1.1.1", "host", ":::", "1::2::3", "12345::"] {
            #expect(!IPAddressText.isValid(invalid), "\(invalid)")
        }
    }
}
