import ConnectdCore
import TestSupport
import Foundation
import Testing

/// Fleet mode end to end: a real 3-member etcd cluster and two agents on loopback, `web` behind
/// host-a's managed proxy and `db` behind host-b's, talking over mutual TLS across the hosts.
@Suite(.serialized) struct FleetTests {
    final class Fleet: @unchecked Sendable {
        let cluster: EtcdCluster
        let dir: String
        var apps: [Process] = []
        var hosts: [String: AgentProcess] = [:]
        var arguments: [String: [String]] = [:]
        let upstreamPort = freeLoopbackPort()

        /// - Parameter faults: the failure suite's cluster: 50/500 ms timers, data on tmpfs.
        init(label: String, faults: Bool = false, clusterArguments: [String] = [], alsoListenOn: [String] = []) throws {
            cluster = faults ? try EtcdCluster(extraArguments: clusterArguments, timers: (50, 500), onTmpfs: true, alsoListenOn: alsoListenOn)
                : try EtcdCluster(extraArguments: clusterArguments, alsoListenOn: alsoListenOn)
            dir = makeTemporaryDirectory(label)
        }

        /// Waits (bounded) until `node`'s view equals a fresh linearizable range of the prefix
        /// (same keys, same mod revisions); returns false on timeout.
        func viewMatchesEtcd(_ node: String, seconds: Double = 15) -> Bool {
            wait(seconds: seconds, every: 0.1) {
                guard let view = try? json(node, "/v1/agent/fleet")["View"], case .array(let scopes)? = view["Scopes"], !scopes.isEmpty else { return false }
                // What etcd holds in the agent's scopes (each a key, or a prefix ending in /).
                let names = scopes.compactMap { $0["Scope"]?.stringValue }
                guard let (listed, revision) = try? cluster.range(prefix: "connectd/v1/") else { return false }
                let pairs = listed.filter { pair in names.contains { $0.hasSuffix("/") ? pair.key.hasPrefix($0) : pair.key == $0 } }
                guard case .int(let seen)? = view["Revision"], seen >= revision else { return false }
                var text = ""
                for (key, modRevision) in pairs.sorted(by: { $0.key < $1.key }) { text += "\(key)\u{0}\(modRevision)\n" }
                return view["Checksum"]?.stringValue == ContentHash.of(bytes: Array(text.utf8))
            } != nil
        }

        /// Every process started for this fleet: agents' managed proxies carry CONNECTD_DATA_DIR.
        func processesUnderDirectory() -> [Int32] {
            let marker = Array("CONNECTD_DATA_DIR=\(dir)".utf8)
            return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry -> Int32? in
                guard let pid = Int32(entry), let environment = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { return nil }
                return environment.split(separator: 0).contains { Array($0).starts(with: marker) } ? pid : nil
            }
        }

        /// Starts `connectd demo-http -name <name>` on a free port (under `launcher`); returns the port.
        func app(_ name: String, launcher: [String] = []) throws -> Int {
            let port = freeLoopbackPort()
            let process = Process()
            let command = [connectdBinary(), "demo-http", "-name", name, "-listen", "127.0.0.1:\(port)"]
            process.executableURL = URL(fileURLWithPath: (launcher + command)[0])
            process.arguments = Array((launcher + command).dropFirst())
            try process.run()
            apps.append(process)
            return port
        }

        /// Writes host `node`'s config and starts its agent. `services` is the JSON of `services`.
        @discardableResult
        func start(_ node: String, rootHolder: Bool, services: String = "[]", firstProxyPort: Int, etcdPassword: String? = nil,
                   address: String = "127.0.0.1", endpoints etcd: [String]? = nil, launcher: [String] = [],
                   environment: [String: String] = [:]) throws -> AgentProcess {
            let config = dir + "/" + node
            try FileManager.default.createDirectory(atPath: config, withIntermediateDirectories: true)
            let endpoints = (etcd ?? cluster.endpoints).map { "\"\($0)\"" }.joined(separator: ", ")
            var user = ""
            if let etcdPassword {
                let file = dir + "/" + node + "-etcd-password"
                FileManager.default.createFile(atPath: file, contents: Data(etcdPassword.utf8), attributes: [.posixPermissions: 0o600])
                user = #", "etcd_username": "\#(node)", "etcd_password_file": "\#(file)""#
            }
            try """
            {"node_name": "\(node)", "bind_addr": "\(address)", "advertise_addr": "\(address)", "client_addr": "\(address)",
             "ports": {"proxy_min_port": \(firstProxyPort), "proxy_max_port": \(firstProxyPort + 50)},
             "connect": {"proxy": {"allow_managed_root": true}, "proxy_defaults": {"stop_grace": "2s"}, "ca_config": {"root_change_jitter": "1s"}},
             "fleet": {"etcd_endpoints": [\(endpoints)], "key_prefix": "connectd/", "root_holder": \(rootHolder)\(user)},
             "services": \(services)}
            """.write(toFile: config + "/agent.json", atomically: true, encoding: .utf8)
            // A fixed HTTP port, so a restarted agent adopts its proxies.
            let arguments = ["-data-dir", config + "/data", "-config-dir", config, "-http-port", String(freeLoopbackPort())]
            self.arguments[node] = arguments
            launchers[node] = (launcher, address)
            let agent = try AgentProcess(arguments, environment: environment, launcher: launcher, host: address)
            hosts[node] = agent
            return agent
        }

        var launchers: [String: (launcher: [String], host: String)] = [:]

        func restart(_ node: String) throws {
            let (launcher, host) = launchers[node] ?? ([], "127.0.0.1")
            hosts[node] = try AgentProcess(arguments[node]!, launcher: launcher, host: host)
        }

        /// host-a (root holder) with web and its upstream to db; host-b with db. With
        /// `passwords`, each host logs in to etcd as its own user.
        /// - Parameter dbService: more members of db's service definition (JSON text).
        func startWebAndDb(passwords: [String: String] = [:], environment: [String: [String: String]] = [:], dbService: String = "") throws {
            let web = try app("web"), db = try app("db")
            try start("host-a", rootHolder: true, services: """
                [{"name": "web", "port": \(web), "connect": {"proxy": {"upstreams": [{"destination_name": "db", "local_bind_port": \(upstreamPort)}]}}}]
                """, firstProxyPort: freeRange(), etcdPassword: passwords["host-a"], environment: environment["host-a"] ?? [:])
            try start("host-b", rootHolder: false, services: """
                [{"name": "db", "port": \(db), \(dbService.isEmpty ? "" : dbService + ", ")"connect": {"proxy": {}}}]
                """, firstProxyPort: freeRange(), etcdPassword: passwords["host-b"], environment: environment["host-b"] ?? [:])
        }

        var rangeBase = Int.random(in: 0..<40) * 100 + 21000
        func freeRange() -> Int {
            rangeBase += 100
            return rangeBase
        }

        func host(_ node: String) -> AgentProcess { hosts[node]! }

        func json(_ node: String, _ target: String) throws -> JSONValue { try JSONParser.parse(try host(node).get(target).body) }

        func send(_ node: String, _ method: String, _ target: String, _ body: String = "") throws -> SimpleHTTPResponse {
            try SimpleHTTPClient.send(method: method, host: host(node).host, port: host(node).port, target: target, body: Array(body.utf8))
        }

        /// One request through web's upstream listener on host-a: the body, or nil.
        func throughUpstream() -> String? {
            guard let response = try? SimpleHTTPClient.send(method: "GET", host: "127.0.0.1", port: upstreamPort, target: "/", timeoutSeconds: 5),
                  response.status == 200 else { return nil }
            return response.text
        }

        /// Waits (bounded) until `condition` holds; returns the seconds it took, nil on timeout.
        func wait(seconds: Double, every interval: Double = 0.05, _ condition: () -> Bool) -> Double? {
            let start = Date()
            while Date().timeIntervalSince(start) < seconds {
                if condition() { return Date().timeIntervalSince(start) }
                Thread.sleep(forTimeInterval: interval)
            }
            return nil
        }

        /// The last lines of every proxy log of `node` (for failure messages).
        func proxyLogs(_ node: String, lines: Int = 15) -> String {
            let directory = dir + "/" + node + "/data/proxy/logs"
            return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted().map { name in
                let text = (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? ""
                return "== \(name)\n" + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
            }.joined(separator: "\n")
        }

        /// The PIDs of a host's managed proxies (to stop them when the agent was SIGKILLed).
        func proxyPIDs(_ node: String) -> [Int32] {
            guard case .array(let entries)? = try? json(node, "/v1/agent/proxies") else { return [] }
            return entries.compactMap { entry in if case .int(let pid)? = entry["Pid"] { Int32(pid) } else { nil } }
        }

        func stop() {
            var pids: [Int32] = []
            for node in hosts.keys.sorted() { pids += proxyPIDs(node) }
            for agent in hosts.values where agent.process.isRunning { _ = agent.stop() }
            // Proxies of an agent that was SIGKILLed (and so never stopped them) too.
            for pid in pids + processesUnderDirectory() { kill(pid, SIGKILL) }
            for process in apps { process.terminate(); process.waitUntilExit() }
            cluster.stop()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    @Test(.timeLimit(.minutes(2))) func webOnOneHostReachesDbOnAnotherAndIntentionsDecideEverywhere() throws {
        let fleet = try Fleet(label: "fleet-mesh")
        defer { fleet.stop() }
        try fleet.startWebAndDb()
        #expect(fleet.wait(seconds: 30, every: 0.2) { fleet.throughUpstream() == "hello from db\n" } != nil,
                "web on host-a never reached db on host-b; host-a log:\n\(fleet.host("host-a").log)\nhost-b log:\n\(fleet.host("host-b").log)")

        // One trust domain and root for both hosts.
        let rootsA = try fleet.json("host-a", "/v1/agent/connect/ca/roots"), rootsB = try fleet.json("host-b", "/v1/agent/connect/ca/roots")
        #expect(rootsA["TrustDomain"] == rootsB["TrustDomain"] && rootsA["TrustDomain"]?.stringValue?.hasSuffix(".consul") == true)
        #expect(rootsA["ActiveRootID"] == rootsB["ActiveRootID"] && rootsA["ActiveRootID"]?.stringValue?.isEmpty == false)

        // A's leaf for web carries A's intermediate and verifies against B's roots.
        let leaf = try fleet.json("host-a", "/v1/agent/connect/ca/leaf/web")
        let pem = try #require(leaf["CertPEM"]?.stringValue)
        let certificates = pem.components(separatedBy: "-----BEGIN CERTIFICATE-----").count - 1
        #expect(certificates == 2, "leaf + host-a's intermediate")
        let parts = pem.components(separatedBy: "-----END CERTIFICATE-----")
        try (parts[0] + "-----END CERTIFICATE-----\n").write(toFile: fleet.dir + "/leaf.pem", atomically: true, encoding: .utf8)
        try (parts[1].trimmingCharacters(in: .whitespacesAndNewlines) + "\n-----END CERTIFICATE-----\n")
            .write(toFile: fleet.dir + "/intermediate.pem", atomically: true, encoding: .utf8)
        guard case .array(let roots)? = rootsB["Roots"] else { Issue.record("no roots on host-b"); return }
        try roots.compactMap { $0["RootCert"]?.stringValue }.joined().write(toFile: fleet.dir + "/roots.pem", atomically: true, encoding: .utf8)
        let verified = try openssl(["verify", "-CAfile", "roots.pem", "-untrusted", "intermediate.pem", "leaf.pem"], in: fleet.dir)
        #expect(verified.status == 0 && verified.output.contains("leaf.pem: OK"), "\(verified.output)")
        let alone = try openssl(["verify", "-CAfile", "roots.pem", "leaf.pem"], in: fleet.dir)
        #expect(alone.status != 0, "the leaf is not signed by the root itself: the intermediate is needed")

        // A deny created on host-b stops web → db (through host-a's proxy and host-b's) within 1 s.
        let created = try fleet.send("host-b", "POST", "/v1/connect/intentions", #"{"SourceName":"web","DestinationName":"db","Action":"deny"}"#)
        #expect(created.status == 200, "\(created.text)")
        let id = try #require(try JSONParser.parse(created.body)["ID"]?.stringValue)
        let stopped = fleet.wait(seconds: 5) { fleet.throughUpstream() == nil }
        #expect(stopped.map { $0 <= 1 } == true, "blocked after \(stopped.map { String($0) } ?? "never")")
        // host-a sees it, and a second one for the pair is refused on host-a.
        let listed = try fleet.send("host-a", "GET", "/v1/connect/intentions")
        #expect(listed.text.contains(id))
        let duplicate = try fleet.send("host-a", "POST", "/v1/connect/intentions", #"{"SourceName":"web","DestinationName":"db","Action":"allow"}"#)
        #expect(duplicate.status == 400 && duplicate.text.contains("duplicate intention found"), "\(duplicate.text)")
        // Updated to allow on host-a (compared by its etcd revision): traffic flows again.
        let updated = try fleet.send("host-a", "PUT", "/v1/connect/intentions/\(id)", #"{"SourceName":"web","DestinationName":"db","Action":"allow"}"#)
        #expect(updated.status == 200, "\(updated.text)")
        #expect(fleet.wait(seconds: 5) { fleet.throughUpstream() == "hello from db\n" } != nil)
        let onB = try fleet.json("host-b", "/v1/connect/intentions/\(id)")
        #expect(onB["Action"] == .string("allow"))
        if case .int(let created)? = onB["CreateIndex"], case .int(let modified)? = onB["ModifyIndex"] {
            #expect(modified > created && created > 1, "indexes are etcd revisions")
        } else {
            Issue.record("no indexes: \(onB)")
        }
        // Deleted on host-b: gone on host-a too, and traffic still flows (no intention: default allow).
        #expect(try fleet.send("host-b", "DELETE", "/v1/connect/intentions/\(id)").status == 200)
        #expect(fleet.wait(seconds: 5) { (try? fleet.send("host-a", "GET", "/v1/connect/intentions/\(id)"))?.status == 404 } != nil)
        #expect(fleet.throughUpstream() == "hello from db\n")

        // Fleet metrics: the lease held, the view's watch current, etcd calls timed, the intermediate's expiry.
        let metrics = try fleet.send("host-a", "GET", "/v1/agent/metrics?format=prometheus").text
        for line in [#"connectd_fleet_lease{state="held"} 1"#, #"connectd_fleet_lease{state="unconfirmed"} 0"#, "connectd_fleet_view_watching 1",
                     #"connectd_fleet_etcd_request_duration_seconds_count{call="lease/grant"} "#, "connectd_fleet_view_lag_revisions ",
                     "connectd_ca_intermediate_expiry_seconds "] {
            #expect(metrics.contains(line), "\(line) in host-a's metrics:\n\(metrics)")
        }
    }

    /// Check states travel with the catalog: db's check failing on host-b takes db out of
    /// host-a's `?passing` answer, and web's traffic with it.
    @Test(.timeLimit(.minutes(2))) func aFailingCheckOnOneHostStopsTrafficFromAnother() throws {
        let fleet = try Fleet(label: "fleet-checks")
        defer { fleet.stop() }
        try fleet.startWebAndDb(dbService: #""check": {"id": "db-ttl", "ttl": "10m", "status": "passing"}"#)
        #expect(fleet.wait(seconds: 30, every: 0.2) { fleet.throughUpstream() == "hello from db\n" } != nil,
                "web never reached db; host-b log:\n\(fleet.host("host-b").log)")
        func passingOnA() -> Int {
            guard case .array(let entries)? = try? fleet.json("host-a", "/v1/health/connect/db?passing") else { return -1 }
            return entries.count
        }
        #expect(try fleet.send("host-b", "PUT", "/v1/agent/check/fail/db-ttl?note=down").status == 200)
        #expect(fleet.wait(seconds: 10) { passingOnA() == 0 } != nil, "host-a still lists db as passing")
        #expect(fleet.wait(seconds: 10) { fleet.throughUpstream() == nil } != nil, "web still reaches a failing db")
        #expect(try fleet.send("host-b", "PUT", "/v1/agent/check/pass/db-ttl").status == 200)
        #expect(fleet.wait(seconds: 10) { passingOnA() == 1 } != nil)
        #expect(fleet.wait(seconds: 10) { fleet.throughUpstream() == "hello from db\n" } != nil)
    }

    @Test(.timeLimit(.minutes(2))) func aKilledHostLeavesTheCatalogWithinTheLeaseTTL() throws {
        let fleet = try Fleet(label: "fleet-catalog")
        defer { fleet.stop() }
        try fleet.startWebAndDb()
        var entry: JSONValue?
        _ = fleet.wait(seconds: 30, every: 0.2) {
            if case .array(let list)? = try? fleet.json("host-a", "/v1/health/connect/db?passing"), let first = list.first { entry = first }
            return entry != nil
        }
        let found = try #require(entry, "db's proxy on host-b never showed up on host-a")
        #expect(found["Node"]?["Node"] == .string("host-b"))
        #expect(found["Node"]?["Address"] == .string("127.0.0.1"))
        #expect(found["Service"]?["ID"] == .string("db-proxy"))
        #expect(found["Checks"]?[0]?["Status"] == .string("passing"))
        let index = try fleet.host("host-a").get("/v1/health/connect/db").headers.first { $0.0.lowercased() == "x-consul-index" }?.1
        #expect((index.flatMap { Int($0) } ?? 0) > 1, "X-Consul-Index is etcd's revision")

        let pids = fleet.proxyPIDs("host-b")
        fleet.host("host-b").signal(SIGKILL)
        _ = fleet.host("host-b").waitForExit(seconds: 5)
        for pid in pids { kill(pid, SIGKILL) }
        let gone = fleet.wait(seconds: 20, every: 0.2) {
            guard case .array(let list)? = try? fleet.json("host-a", "/v1/health/connect/db?passing") else { return false }
            return list.isEmpty
        }
        #expect(gone.map { $0 <= 12 } == true, "gone after \(gone.map { String($0) } ?? "never") s (lease TTL 10 s + 2 s)")
        // The root holder noted when it was last seen; fleet status lists it as gone.
        let seen = fleet.wait(seconds: 10, every: 0.2) {
            guard case .array(let hosts)? = try? fleet.json("host-a", "/v1/agent/fleet")["Hosts"] else { return false }
            return hosts.contains { $0["Node"] == .string("host-b") && $0["LeaseAlive"] == .bool(false) && $0["LastSeen"]?.stringValue != nil }
        }
        #expect(seen != nil, "\((try? fleet.json("host-a", "/v1/agent/fleet")) ?? .null)")
        let status = try runConnectd(["fleet", "status", "-http-addr", "127.0.0.1:\(fleet.host("host-a").port)"])
        #expect(status.output.contains("LAST SEEN") && status.output.contains("host-b"), "\(status.output)")
    }

    /// An agent keeps the catalog of the services it uses, not the fleet's: another service's
    /// changes send it no events; its first query of a service starts keeping that one.
    @Test(.timeLimit(.minutes(2))) func anAgentKeepsOnlyTheServicesItUses() throws {
        let fleet = try Fleet(label: "fleet-scopes")
        defer { fleet.stop() }
        try fleet.startWebAndDb()
        #expect(fleet.wait(seconds: 30, every: 0.2) { fleet.throughUpstream() == "hello from db\n" } != nil)
        func scopes(_ node: String) -> [String] {
            guard case .array(let list)? = try? fleet.json(node, "/v1/agent/fleet")["View"]?["Scopes"] else { return [] }
            return list.compactMap { $0["Scope"]?.stringValue }
        }
        #expect(scopes("host-a").contains("catalog/db/") && scopes("host-a").contains("catalog/web/"), "\(scopes("host-a"))")
        #expect(!scopes("host-b").contains("catalog/web/"), "host-b's db has no upstream: \(scopes("host-b"))")
        #expect(!scopes("host-b").contains("ca/"), "host-b is no root holder: \(scopes("host-b"))")
        // A service only host-b has, registered through host-b's API: host-a sees no event.
        let events = { () -> Int64 in
            guard case .int(let count)? = try? fleet.json("host-a", "/v1/agent/fleet")["View"]?["EventsReceived"] else { return -1 }
            return count
        }
        // A window in which etcd saw only that write (host-a's own proxy check may be rewritten
        // meanwhile, a change it does use): at most three tries.
        var measured = false
        for attempt in 1...3 where !measured {
            let before = events()
            let revisionBefore = try fleet.cluster.range(prefix: "connectd/v1/").revision
            let name = attempt == 1 ? "api" : "api\(attempt)"
            let api = try fleet.send("host-b", "PUT", "/v1/agent/service/register", #"{"Name":"\#(name)","Port":7001,"Tags":["v1"]}"#)
            #expect(api.status == 200, "\(api.text)")
            #expect(fleet.wait(seconds: 10, every: 0.2) {
                (try? fleet.cluster.etcdctl(["get", "--prefix", "connectd/v1/catalog/\(name)/", "--keys-only"]).output.contains("host-b")) == true
            } != nil)
            Thread.sleep(forTimeInterval: 2)
            let written = try fleet.cluster.range(prefix: "connectd/v1/").pairs.filter { $0.modRevision > revisionBefore }.map(\.key)
            guard written == ["catalog/\(name)/host-b/\(name)"] else { continue }
            #expect(events() == before, "host-a received events for a service it does not use")
            #expect(!scopes("host-a").contains("catalog/\(name)/"))
            measured = true
        }
        #expect(measured, "etcd never had a quiet window of 2 s")
        // The list of all services is read from etcd.
        let services = try fleet.json("host-a", "/v1/catalog/services")
        #expect(services["api"] == .array([.string("v1")]) && services["db"] != nil, "\(services)")
        // The first query of api on host-a starts keeping it and answers from it.
        let catalog = try fleet.send("host-a", "GET", "/v1/catalog/connect/api")
        #expect(catalog.status == 200)
        #expect(scopes("host-a").contains("catalog/api/"))
        #expect(fleet.viewMatchesEtcd("host-a"), "\((try? fleet.json("host-a", "/v1/agent/fleet")["View"]) ?? .null) etcd: \((try? fleet.cluster.etcdctl(["get", "--prefix", "connectd/v1/", "--keys-only"]).output) ?? "")")
        #expect(fleet.viewMatchesEtcd("host-b"))
    }

    @Test(.timeLimit(.minutes(4))) func failStaticWithEveryEtcdMemberStopped() throws {
        let fleet = try Fleet(label: "fleet-static")
        defer { fleet.stop() }
        try fleet.startWebAndDb()
        #expect(fleet.wait(seconds: 30, every: 0.2) { fleet.throughUpstream() == "hello from db\n" } != nil)
        let kept = try KeptAliveConnection(port: fleet.upstreamPort)
        #expect(kept.get()?.contains("hello from db") == true)

        for index in 0..<3 { fleet.cluster.kill(index) }
        // A registration on host-a while etcd is gone succeeds locally.
        let registered = try fleet.send("host-a", "PUT", "/v1/agent/service/register", #"{"Name": "cache", "Port": 6379}"#)
        #expect(registered.status == 200, "\(registered.text)")
        // An intention write fails within the request timeout and says why.
        let started = Date()
        let refused = try fleet.send("host-b", "POST", "/v1/connect/intentions", #"{"SourceName":"x","DestinationName":"db","Action":"allow"}"#)
        #expect(refused.status == 500 && refused.text.contains("etcd is unreachable"), "\(refused.text)")
        #expect(Date().timeIntervalSince(started) < 5)
        // host-b crashes during the outage and comes back: it serves from the view on disk and
        // adopts its proxy, which kept serving meanwhile.
        fleet.host("host-b").signal(SIGKILL)
        _ = fleet.host("host-b").waitForExit(seconds: 5)
        try fleet.restart("host-b")
        try fleet.host("host-b").waitForLog("serving the saved fleet view")

        // 60 s: new connections, the kept one, new leaves and authorize, all from cache.
        let until = Date().addingTimeInterval(60)
        var newConnections = 0, keptRequests = 0, failures: [String] = []
        while Date() < until {
            if fleet.throughUpstream() == "hello from db\n" { newConnections += 1 } else { failures.append("new connection at \(Int(until.timeIntervalSinceNow))") }
            if kept.get()?.contains("hello from db") == true { keptRequests += 1 } else { failures.append("kept connection at \(Int(until.timeIntervalSinceNow))") }
            Thread.sleep(forTimeInterval: 1)
        }
        #expect(failures.isEmpty, "\(failures)")
        #expect(newConnections >= 50 && keptRequests >= 50)
        for node in ["host-a", "host-b"] {
            let leaf = try fleet.send(node, "GET", "/v1/agent/connect/ca/leaf/outage-\(node)")
            #expect(leaf.status == 200, "\(node): \(leaf.text)")
            let trust = try fleet.json(node, "/v1/agent/connect/ca/roots")["TrustDomain"]?.stringValue ?? ""
            let authorize = try fleet.send(node, "POST", "/v1/agent/connect/authorize",
                                           #"{"Target": "db", "ClientCertURI": "spiffe://\#(trust)/ns/default/dc/dc1/svc/web", "ClientCertSerial": "01"}"#)
            #expect(authorize.status == 200 && authorize.text.contains("\"Authorized\":true"), "\(node): \(authorize.text)")
        }

        // etcd back: the service registered on host-a during the outage reaches host-b.
        for index in 0..<3 { try fleet.cluster.restart(index) }
        #expect(fleet.cluster.waitUntilHealthy(seconds: 20))
        let seen = fleet.wait(seconds: 30, every: 0.2) {
            (try? fleet.json("host-b", "/v1/catalog/services"))?["cache"] != nil
        }
        #expect(seen != nil, "cache never reached host-b; host-a log:\n\(fleet.host("host-a").log)")
        #expect(fleet.throughUpstream() == "hello from db\n")
    }

    /// etcd auth on, users and roles made by contrib/fleet/etcd-auth: each host logs in as its
    /// own user, the mesh works, and a host's user cannot write another host's CA keys.
    @Test(.timeLimit(.minutes(2))) func withEtcdAuthEachHostWritesOnlyWhatItsRoleAllows() throws {
        let fleet = try Fleet(label: "fleet-auth")
        defer { fleet.stop() }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("contrib/fleet/etcd-auth").path
        func run(_ arguments: [String], _ environment: [String: String]) throws -> CommandResult {
            try runProcess(script, arguments, environment: [
                "PATH": "/usr/bin:/bin", "ETCDCTL_API": "3", "ETCDCTL_ENDPOINTS": fleet.cluster.endpoints.joined(separator: ","),
                "ETCD_ROOT_PASSWORD": "rootpw"].merging(environment) { $1 })
        }
        for (arguments, password) in [(["enable"], ""), (["add-host", "host-a", "root-holder"], "pw-a"), (["add-host", "host-b"], "pw-b")] {
            let result = try run(arguments, ["CONNECTD_HOST_PASSWORD": password])
            #expect(result.status == 0, "\(arguments): \(result.output)")
        }
        try fleet.startWebAndDb(passwords: ["host-a": "pw-a", "host-b": "pw-b"])
        #expect(fleet.wait(seconds: 30, every: 0.2) { fleet.throughUpstream() == "hello from db\n" } != nil,
                "host-a log:\n\(fleet.host("host-a").log)\nhost-b log:\n\(fleet.host("host-b").log)")
        let forged = try fleet.cluster.etcdctl(["--user", "host-b:pw-b", "put", "connectd/v1/ca/intermediates/host-a", "forged"])
        #expect(forged.status != 0 && forged.output.contains("permission denied"), "\(forged.output)")
        let own = try fleet.cluster.etcdctl(["--user", "host-b:pw-b", "get", "connectd/v1/ca/roots", "--print-value-only"])
        #expect(own.status == 0 && own.output.contains("ClusterID"), "\(own.output)")
    }

    /// `connectd fleet remove-host`: the host's entries leave the catalog at once (not after its
    /// lease), it publishes nothing more though it still runs, and gets no new intermediate.
    @Test(.timeLimit(.minutes(2))) func aRemovedHostLeavesAtOnceAndGetsNoIntermediate() throws {
        let fleet = try Fleet(label: "fleet-remove")
        defer { fleet.stop() }
        let systemd = try NotifyListener()
        try fleet.startWebAndDb(environment: ["host-b": ["NOTIFY_SOCKET": systemd.path]])
        #expect(fleet.wait(seconds: 30, every: 0.2) { fleet.throughUpstream() == "hello from db\n" } != nil)
        // STATUS= carries the fleet line.
        #expect(systemd.waitFor("1 service(s) watched") != nil, "\(systemd.messages.map(\.1))")
        let removed = try runConnectd(["fleet", "remove-host", "host-b", "-http-addr", "127.0.0.1:\(fleet.host("host-a").port)"])
        #expect(removed.status == 0 && removed.output.contains("Removed host-b"), "\(removed.output)")
        let gone = fleet.wait(seconds: 5, every: 0.1) {
            guard case .array(let list)? = try? fleet.json("host-a", "/v1/health/connect/db") else { return false }
            return list.isEmpty
        }
        #expect(gone != nil, "db left host-a's catalog at once, not after the lease TTL")
        try fleet.host("host-b").waitForLog("this host was removed from the fleet")
        #expect(systemd.waitFor("THIS HOST WAS REMOVED", seconds: 10) != nil, "\(systemd.messages.map(\.1).suffix(3))")
        // It still runs and is still registered locally, but nothing comes back into the catalog.
        Thread.sleep(forTimeInterval: 6)
        #expect(try fleet.cluster.etcdctl(["get", "--prefix", "connectd/v1/catalog/", "--keys-only"]).output.contains("host-b") == false)
        #expect(try fleet.json("host-b", "/v1/agent/fleet")["Removed"] == .bool(true))
        #expect(try fleet.json("host-b", "/v1/agent/self")["Stats"]?["connectd"]?["fleet"]?.stringValue?.contains("REMOVED") == true)
        // Its intermediate is gone (as at expiry): it is not signed again, and leaves say why.
        #expect(try fleet.cluster.etcdctl(["del", "connectd/v1/ca/intermediates/host-b"]).status == 0)
        Thread.sleep(forTimeInterval: 3)
        #expect(try fleet.cluster.etcdctl(["get", "connectd/v1/ca/intermediates/host-b", "--keys-only"]).output
            .trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        let leaf = try fleet.send("host-b", "GET", "/v1/agent/connect/ca/leaf/new-service")
        #expect(leaf.status == 503 && leaf.text.contains("removed from the fleet"), "\(leaf.text)")
        let status = try runConnectd(["fleet", "status", "-http-addr", "127.0.0.1:\(fleet.host("host-a").port)"])
        #expect(status.status == 0 && status.output.contains("host-b"), "\(status.output)")
    }

    @Test(.timeLimit(.minutes(2))) func twoRootHoldersStartedAtOnceCreateOneRoot() throws {
        let fleet = try Fleet(label: "fleet-holders")
        defer { fleet.stop() }
        let first = fleet.freeRange(), second = fleet.freeRange()
        let group = DispatchGroup()
        let failures = Atomic(0)
        for (node, range) in [("holder-1", first), ("holder-2", second)] {
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                if (try? fleet.startConcurrently(node, firstProxyPort: range)) == nil { failures.add() }
            }
        }
        group.wait()
        #expect(failures.value == 0)
        let rootIDs = { ["holder-1", "holder-2"].map { (try? fleet.json($0, "/v1/agent/connect/ca/roots"))?["ActiveRootID"]?.stringValue ?? "" } }
        #expect(fleet.wait(seconds: 20) { let ids = rootIDs(); return !ids[0].isEmpty && ids[0] == ids[1] } != nil, "\(rootIDs())")
        let created = ["holder-1", "holder-2"].filter { fleet.host($0).log.contains("created the fleet's root") }
        #expect(created.count == 1, "\(created)")
        let stored = try fleet.cluster.etcdctl(["get", "connectd/v1/ca/roots", "--print-value-only"])
        let roots = try JSONParser.parse(stored.output)["Roots"]
        if case .array(let list)? = roots { #expect(list.count == 1) } else { Issue.record("no roots in etcd: \(stored.output)") }
        // Both hosts sign leaves (each got its intermediate from the winner).
        for node in ["holder-1", "holder-2"] {
            #expect(fleet.wait(seconds: 10) { (try? fleet.send(node, "GET", "/v1/agent/connect/ca/leaf/svc"))?.status == 200 } != nil)
        }
    }
}

extension FleetTests.Fleet {
    private static let lock = NSLock()

    /// `start`, safe to call from two threads at once.
    func startConcurrently(_ node: String, firstProxyPort: Int) throws {
        let config = dir + "/" + node
        try FileManager.default.createDirectory(atPath: config, withIntermediateDirectories: true)
        let endpoints = cluster.endpoints.map { "\"\($0)\"" }.joined(separator: ", ")
        try """
        {"node_name": "\(node)", "bind_addr": "127.0.0.1", "ports": {"proxy_min_port": \(firstProxyPort), "proxy_max_port": \(firstProxyPort + 50)},
         "fleet": {"etcd_endpoints": [\(endpoints)], "root_holder": true}}
        """.write(toFile: config + "/agent.json", atomically: true, encoding: .utf8)
        let agent = try AgentProcess(["-data-dir", config + "/data", "-config-dir", config])
        Self.lock.lock()
        hosts[node] = agent
        Self.lock.unlock()
    }
}

/// Requests through an upstream listener every 50 ms on a thread, counting the failures.
final class RequestLoop: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private(set) var failures: [String] = []
    private(set) var successes = 0
    private let started = Date()

    init(_ request: @escaping @Sendable () -> String?, expect: String = "hello from db\n") {
        // The thread holds the loop until it sees `finish`.
        let loop = Thread { [self] in
            while self.isRunning {
                let answer = request()
                self.lock.lock()
                if answer == expect { self.successes += 1 } else {
                    self.failures.append(String(format: "%.1f s: %@", Date().timeIntervalSince(self.started), answer ?? "no answer"))
                }
                self.lock.unlock()
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        loop.start()
    }

    private var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    /// Stops the loop; returns (successes, failures).
    func finish() -> (successes: Int, failures: [String]) {
        lock.lock()
        running = false
        lock.unlock()
        Thread.sleep(forTimeInterval: 0.2)
        lock.lock()
        defer { lock.unlock() }
        return (successes, failures)
    }
}

/// One HTTP/1.1 connection kept open through a proxy, sending a request whenever asked.
final class KeptAliveConnection {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw SimpleHTTPError(description: "connect failed: errno \(errno)") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// One GET on the kept connection: the response text, or nil.
    func get() -> String? {
        let request = Array("GET / HTTP/1.1\r\nHost: db\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var text = ""
        while !(text.contains("\r\n\r\n") && text.hasSuffix("\n") && text.contains("hello")) {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { return text.isEmpty ? nil : text }
            text += String(decoding: buffer[0..<count], as: UTF8.self)
        }
        return text
    }
}
