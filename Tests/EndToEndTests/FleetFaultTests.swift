import ConnectdCore
import Foundation
import Testing
import TestSupport

/// Fleet mode under etcd failures: a 3-member cluster with 50/500 ms timers on tmpfs, host-a
/// (web) and host-b (db). In each case a request loop through web's upstream (host-a's proxy →
/// host-b's proxy) must see no failed request, and afterwards each agent's view equals a fresh
/// range of the prefix.
@Suite(.serialized) struct FleetFaultTests {
    typealias Fleet = FleetTests.Fleet

    func meshUp(_ label: String, clusterArguments: [String] = []) throws -> Fleet {
        let fleet = try Fleet(label: label, faults: true, clusterArguments: clusterArguments)
        try fleet.startWebAndDb()
        guard fleet.wait(seconds: 30, every: 0.1, { fleet.throughUpstream() == "hello from db\n" }) != nil else {
            fleet.stop()
            throw SimpleHTTPError(description: "the mesh never came up")
        }
        return fleet
    }

    func expectConverged(_ fleet: Fleet, _ nodes: [String] = ["host-a", "host-b"]) {
        for node in nodes {
            #expect(fleet.viewMatchesEtcd(node), "\(node)'s view differs from etcd: \((try? fleet.json(node, "/v1/agent/fleet")) ?? .null)")
        }
    }

    /// Creates web → db (deny 0 times: an allow, so traffic keeps flowing) until it holds,
    /// retrying on 500 as a client would; returns the answers seen.
    func createRetrying(_ fleet: Fleet, on node: String, source: String) throws -> [Int] {
        var statuses: [Int] = []
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let answer = try fleet.send(node, "POST", "/v1/connect/intentions", #"{"SourceName":"\#(source)","DestinationName":"db","Action":"allow"}"#)
            statuses.append(answer.status)
            if answer.status == 200 || (answer.status == 400 && answer.text.contains("duplicate intention found")) { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return statuses
    }

    func intentionsFor(source: String, _ fleet: Fleet) throws -> Int {
        let listed = try fleet.cluster.etcdctl(["get", "--prefix", "connectd/v1/intentions/", "--print-value-only"])
        return listed.output.components(separatedBy: #""SourceName":"\#(source)""#).count - 1
    }

    @Test(.timeLimit(.minutes(2))) func aKilledFollowerThenAKilledLeaderLoseNoRequest() throws {
        let fleet = try meshUp("fault-members")
        defer { fleet.stop() }
        let loop = RequestLoop { fleet.throughUpstream() }
        let leader = try #require(fleet.cluster.leaderIndex())
        let follower = (leader + 1) % 3
        fleet.cluster.kill(follower)
        expectConverged(fleet)
        try fleet.cluster.restart(follower)
        #expect(fleet.cluster.waitUntilHealthy(seconds: 20))

        let current = try #require(fleet.cluster.leaderIndex())
        fleet.cluster.kill(current)
        // A write right after the leader died, retried by the client until it holds: one record.
        let statuses = try createRetrying(fleet, on: "host-b", source: "billing")
        #expect(statuses.last == 200 || statuses.last == 400, "\(statuses)")
        #expect(try intentionsFor(source: "billing", fleet) == 1)
        let again = try createRetrying(fleet, on: "host-a", source: "billing")
        #expect(again == [400], "a second create of the pair is a duplicate on the other host too")
        #expect(try intentionsFor(source: "billing", fleet) == 1)
        expectConverged(fleet)
        try fleet.cluster.restart(current)
        #expect(fleet.cluster.waitUntilHealthy(seconds: 20))
        expectConverged(fleet)
        let (successes, failures) = loop.finish()
        #expect(failures.isEmpty && successes > 20, "\(successes) ok, failed: \(failures)")
    }

    @Test(.timeLimit(.minutes(2))) func losingQuorumFailsWritesFastAndServesFromTheView() throws {
        let fleet = try meshUp("fault-quorum")
        defer { fleet.stop() }
        let loop = RequestLoop { fleet.throughUpstream() }
        let leader = try #require(fleet.cluster.leaderIndex())
        // Two of three gone, the leader among them: no quorum.
        fleet.cluster.kill(leader)
        fleet.cluster.kill((leader + 1) % 3)
        let started = Date()
        let refused = try fleet.send("host-a", "POST", "/v1/connect/intentions", #"{"SourceName":"x","DestinationName":"db","Action":"allow"}"#)
        let took = Date().timeIntervalSince(started)
        #expect(refused.status == 500 && refused.text.contains("etcd is unreachable"), "\(refused.text)")
        #expect(took < 3, "refused after \(took) s (etcd itself answers after about 7 s without quorum)")
        Thread.sleep(forTimeInterval: 5)
        for node in ["host-a", "host-b"] {
            #expect(try fleet.send(node, "GET", "/v1/agent/connect/ca/leaf/during-\(node)").status == 200)
        }
        try fleet.cluster.restart(leader)
        try fleet.cluster.restart((leader + 1) % 3)
        #expect(fleet.cluster.waitUntilHealthy(seconds: 20))
        expectConverged(fleet)
        let (successes, failures) = loop.finish()
        #expect(failures.isEmpty && successes > 20, "\(successes) ok, failed: \(failures)")
    }

    /// host-b's agent is down while an intention is created and deleted and etcd compacts to the
    /// delete's revision (etcd#18089 loses such a delete for a watch resumed there): restarted,
    /// host-b lists instead, so it has neither the deleted intention nor a stale view.
    @Test(.timeLimit(.minutes(2))) func compactionWhileAnAgentIsDownIsSeenAfterItsRestart() throws {
        let fleet = try meshUp("fault-compact")
        defer { fleet.stop() }
        let loop = RequestLoop { fleet.throughUpstream() }
        fleet.host("host-b").signal(SIGKILL)
        _ = fleet.host("host-b").waitForExit(seconds: 5)
        let created = try fleet.send("host-a", "POST", "/v1/connect/intentions", #"{"SourceName":"gone","DestinationName":"db","Action":"deny"}"#)
        let id = try #require(try JSONParser.parse(created.body)["ID"]?.stringValue)
        #expect(try fleet.send("host-a", "DELETE", "/v1/connect/intentions/\(id)").status == 200)
        let deleteRevision = try fleet.cluster.range(prefix: "connectd/v1/").revision
        let kept = try fleet.send("host-a", "POST", "/v1/connect/intentions", #"{"SourceName":"kept","DestinationName":"db","Action":"allow"}"#)
        #expect(kept.status == 200)
        let compacted = try fleet.cluster.etcdctl(["compact", String(deleteRevision)])
        #expect(compacted.status == 0, "\(compacted.output)")
        try fleet.restart("host-b")
        expectConverged(fleet)
        let onB = try fleet.send("host-b", "GET", "/v1/connect/intentions").text
        #expect(onB.contains("\"kept\"") && !onB.contains(id), "\(onB)")
        let (successes, failures) = loop.finish()
        #expect(failures.isEmpty && successes > 0, "\(successes) ok, failed: \(failures)")
    }

    /// A host SIGKILLed just before the etcd leader dies: the new leader renews every lease, so
    /// its entries go within the TTL plus one election, not never.
    @Test(.timeLimit(.minutes(2))) func aHostKilledAcrossALeaderChangeLeavesTheCatalog() throws {
        let fleet = try meshUp("fault-lease")
        defer { fleet.stop() }
        let pids = fleet.proxyPIDs("host-b")
        fleet.host("host-b").signal(SIGKILL)
        _ = fleet.host("host-b").waitForExit(seconds: 5)
        for pid in pids { kill(pid, SIGKILL) }
        let killed = Date()
        let leader = try #require(fleet.cluster.leaderIndex())
        fleet.cluster.kill(leader)
        let gone = fleet.wait(seconds: 30, every: 0.2) {
            guard case .array(let list)? = try? fleet.json("host-a", "/v1/health/connect/db") else { return false }
            return list.isEmpty
        }
        let after = Date().timeIntervalSince(killed)
        #expect(gone != nil && after <= 10 + 1 + 3, "gone after \(after) s (TTL 10 s, one election, 3 s slack)")
        try fleet.cluster.restart(leader)
        #expect(fleet.cluster.waitUntilHealthy(seconds: 20))
        expectConverged(fleet, ["host-a"])
    }

    /// etcd's auth tokens expire after 2 s here: the agents log in again and keep working.
    @Test(.timeLimit(.minutes(2))) func expiredAuthTokensAreRenewed() throws {
        let fleet = try Fleet(label: "fault-token", faults: true, clusterArguments: ["--auth-token", "simple", "--auth-token-ttl", "2"])
        defer { fleet.stop() }
        for arguments in [["user", "add", "root:rootpw"], ["user", "grant-role", "root", "root"],
                          ["role", "add", "host"], ["role", "grant-permission", "--prefix=true", "host", "readwrite", "connectd/"],
                          ["user", "add", "host-a:pw-a"], ["user", "grant-role", "host-a", "host"],
                          ["user", "add", "host-b:pw-b"], ["user", "grant-role", "host-b", "host"], ["auth", "enable"]] {
            let result = try fleet.cluster.etcdctl(arguments)
            #expect(result.status == 0, "\(arguments): \(result.output)")
        }
        try fleet.startWebAndDb(passwords: ["host-a": "pw-a", "host-b": "pw-b"])
        #expect(fleet.wait(seconds: 30, every: 0.1) { fleet.throughUpstream() == "hello from db\n" } != nil)
        let loop = RequestLoop { fleet.throughUpstream() }
        // Several token lifetimes of quiet, then writes from both hosts.
        Thread.sleep(forTimeInterval: 6)
        let onA = try fleet.send("host-a", "POST", "/v1/connect/intentions", #"{"SourceName":"a","DestinationName":"db","Action":"allow"}"#)
        #expect(onA.status == 200, "\(onA.text)")
        Thread.sleep(forTimeInterval: 3)
        let onB = try fleet.send("host-b", "POST", "/v1/connect/intentions", #"{"SourceName":"b","DestinationName":"db","Action":"allow"}"#)
        #expect(onB.status == 200, "\(onB.text)")
        #expect(fleet.wait(seconds: 5) { (try? fleet.send("host-a", "GET", "/v1/connect/intentions"))?.text.contains("\"b\"") == true } != nil)
        let (successes, failures) = loop.finish()
        #expect(failures.isEmpty && successes > 20, "\(successes) ok, failed: \(failures)")
    }

    /// 150 registrations on one host are more changes than one etcd transaction takes (128):
    /// they are published in several, and all reach the other host.
    @Test(.timeLimit(.minutes(2))) func moreThan128ChangesArePublishedInSeveralTransactions() throws {
        let fleet = try meshUp("fault-batch")
        defer { fleet.stop() }
        let loop = RequestLoop { fleet.throughUpstream() }
        // One reload adds all 150 at once, so one publication carries them all.
        let services = (0..<150).map { #"{"name": "bulk-\#($0)", "port": \#(30000 + $0)}"# }.joined(separator: ", ")
        try #"{"services": [\#(services)]}"#.write(toFile: fleet.dir + "/host-a/bulk.json", atomically: true, encoding: .utf8)
        let reloaded = try fleet.send("host-a", "PUT", "/v1/agent/reload")
        #expect(reloaded.status == 200, "\(reloaded.text)")
        let seen = fleet.wait(seconds: 30, every: 0.2) {
            guard case .object(let names)? = try? fleet.json("host-b", "/v1/catalog/services") else { return false }
            return names.filter { $0.0.hasPrefix("bulk-") }.count == 150
        }
        #expect(seen != nil)
        expectConverged(fleet)
        let (successes, failures) = loop.finish()
        #expect(failures.isEmpty && successes > 10, "\(successes) ok, failed: \(failures)")
    }

    /// host-b in its own network namespace loses etcd (and host-a) for longer than its lease:
    /// its entries leave host-a's catalog within TTL + 2 s, its own proxies keep serving from the
    /// agent's last view, and after healing it is back under a new lease.
    @Test(.timeLimit(.minutes(3))) func aPartitionedAgentLeavesTheCatalogKeepsServingAndComesBack() throws {
        guard let namespace = NetworkNamespace() else {
            print("skipped: cannot create a network namespace here (needs root and ip netns)")
            return
        }
        defer { namespace.remove() }
        let fleet = try Fleet(label: "fault-partition", faults: true, alsoListenOn: [namespace.gateway])
        defer { fleet.stop() }
        let web = try fleet.app("web")
        try fleet.start("host-a", rootHolder: true, services: """
            [{"name": "web", "port": \(web), "connect": {"proxy": {"upstreams": [{"destination_name": "db", "local_bind_port": \(fleet.upstreamPort)}]}}}]
            """, firstProxyPort: fleet.freeRange())
        // host-b: db, and a local client of db (checker's upstream), all inside the namespace.
        let db = try fleet.app("db", launcher: namespace.launcher)
        let localUpstream = freeLoopbackPort()
        try fleet.start("host-b", rootHolder: false, services: """
            [{"name": "db", "port": \(db), "connect": {"proxy": {}}},
             {"name": "checker", "port": 1, "connect": {"proxy": {"upstreams": [{"destination_name": "db", "local_bind_port": \(localUpstream)}]}}}]
            """, firstProxyPort: fleet.freeRange(), address: namespace.address,
            endpoints: fleet.cluster.endpoints(at: namespace.gateway), launcher: namespace.launcher)
        let inside: @Sendable () -> String? = {
            guard let result = try? namespace.run(["curl", "-s", "-m", "2", "http://127.0.0.1:\(localUpstream)/"]), result.status == 0 else { return nil }
            return result.output
        }
        #expect(fleet.wait(seconds: 30, every: 0.2) { fleet.throughUpstream() == "hello from db\n" && inside() == "hello from db\n" } != nil,
                "host-a log:\n\(fleet.host("host-a").log)\nhost-b log:\n\(fleet.host("host-b").log)\n\(fleet.proxyLogs("host-b"))\n\(fleet.proxyLogs("host-a"))\nhost-b fleet: \((try? fleet.json("host-b", "/v1/agent/fleet")) ?? .null)\nhost-a fleet: \((try? fleet.json("host-a", "/v1/agent/fleet")) ?? .null)\nhealth a: \((try? fleet.send("host-a", "GET", "/v1/health/connect/db"))?.text ?? "")\nhealth b: \((try? fleet.send("host-b", "GET", "/v1/health/connect/db"))?.text ?? "")")
        let leaseBefore = (try? fleet.json("host-b", "/v1/agent/fleet"))?["Lease"]?.stringValue ?? ""

        let loop = RequestLoop(inside)
        namespace.cut()
        let cut = Date()
        let gone = fleet.wait(seconds: 30, every: 0.2) {
            guard case .array(let list)? = try? fleet.json("host-a", "/v1/health/connect/db") else { return false }
            return list.isEmpty
        }
        let after = Date().timeIntervalSince(cut)
        #expect(gone != nil && after <= 12, "host-b's db left host-a's catalog after \(after) s (lease TTL 10 s + 2 s)")
        // Still cut off: host-b serves its proxies from its last view (discovery, authorize, leaves).
        Thread.sleep(forTimeInterval: 2)
        namespace.heal()
        let back = fleet.wait(seconds: 30, every: 0.2) { fleet.throughUpstream() == "hello from db\n" }
        #expect(back != nil, "web on host-a never reached db again; host-b log:\n\(fleet.host("host-b").log)")
        let leaseAfter = (try? fleet.json("host-b", "/v1/agent/fleet"))?["Lease"]?.stringValue ?? ""
        #expect(leaseAfter.hasPrefix("held") && leaseAfter != leaseBefore, "\(leaseBefore) -> \(leaseAfter)")
        let (successes, failures) = loop.finish()
        #expect(failures.isEmpty && successes > 20, "inside host-b: \(successes) ok, failed: \(failures)")
        expectConverged(fleet)
    }

    /// `connectd ca rotate` on the root holder while host-c is cut off: host-a → host-b traffic
    /// never fails, the old root stays listed until host-c has acknowledged the new one, host-c's
    /// own proxies keep serving throughout, and after healing it gets an intermediate under the
    /// new root, acknowledges, and the old root is pruned everywhere.
    @Test(.timeLimit(.minutes(3))) func aRootRotationWithAHostCutOffLosesNoRequestAndWaitsForIt() throws {
        guard let namespace = NetworkNamespace() else {
            print("skipped: cannot create a network namespace here (needs root and ip netns)")
            return
        }
        defer { namespace.remove() }
        let fleet = try Fleet(label: "fault-rotate", faults: true, alsoListenOn: [namespace.gateway])
        defer { fleet.stop() }
        try fleet.startWebAndDb()
        let cache = try fleet.app("cache", launcher: namespace.launcher)
        let localUpstream = freeLoopbackPort()
        try fleet.start("host-c", rootHolder: false, services: """
            [{"name": "cache", "port": \(cache), "connect": {"proxy": {}}},
             {"name": "checker", "port": 1, "connect": {"proxy": {"upstreams": [{"destination_name": "cache", "local_bind_port": \(localUpstream)}]}}}]
            """, firstProxyPort: fleet.freeRange(), address: namespace.address,
            endpoints: fleet.cluster.endpoints(at: namespace.gateway), launcher: namespace.launcher)
        let inside: @Sendable () -> String? = {
            guard let result = try? namespace.run(["curl", "-s", "-m", "2", "http://127.0.0.1:\(localUpstream)/"]), result.status == 0 else { return nil }
            return result.output
        }
        func roots(_ node: String) -> [String] {
            guard case .array(let list)? = (try? fleet.json(node, "/v1/agent/connect/ca/roots"))?["Roots"] else { return [] }
            return list.compactMap { $0["ID"]?.stringValue }
        }
        #expect(fleet.wait(seconds: 30, every: 0.2) { fleet.throughUpstream() == "hello from db\n" && inside() == "hello from cache\n" } != nil)
        #expect(fleet.wait(seconds: 15) { roots("host-c").count == 1 } != nil)
        let mesh = RequestLoop { fleet.throughUpstream() }
        let local = RequestLoop(inside, expect: "hello from cache\n")

        namespace.cut()
        let rotated = try runConnectd(["ca", "rotate", "-http-addr", "127.0.0.1:\(fleet.host("host-a").port)"])
        #expect(rotated.status == 0 && rotated.output.contains("Rotated the CA root"), "\(rotated.output)")
        // host-a and host-b move to the new root and acknowledge it; the old one stays for host-c.
        let acked = fleet.wait(seconds: 40, every: 0.5) {
            let acks = (try? fleet.cluster.etcdctl(["get", "--prefix", "connectd/v1/ca/acks/", "--print-value-only"]))?.output ?? ""
            let active = (try? fleet.json("host-a", "/v1/agent/connect/ca/roots"))?["ActiveRootID"]?.stringValue ?? "?"
            return acks.components(separatedBy: active).count - 1 >= 4   // host-a and host-b, each field
        }
        #expect(acked != nil, "host-a and host-b never acknowledged the new root")
        Thread.sleep(forTimeInterval: 6)
        #expect(roots("host-a").count == 2 && roots("host-b").count == 2, "the old root must stay while host-c has not acknowledged")

        // While cut off and during the rotation, host-c's own proxies never failed.
        let (localOK, localFailures) = local.finish()
        #expect(localFailures.isEmpty && localOK > 20, "inside host-c: \(localOK) ok, failed: \(localFailures); \(fleet.proxyLogs("host-c"))")
        namespace.heal()
        let pruned = fleet.wait(seconds: 60, every: 0.5) { roots("host-a").count == 1 && roots("host-b").count == 1 && roots("host-c").count == 1 }
        #expect(pruned != nil, "not pruned after healing: a \(roots("host-a")), b \(roots("host-b")), c \(roots("host-c")); host-a log:\n\(fleet.host("host-a").log)")
        #expect(Set(roots("host-a")) == Set(roots("host-c")))
        // After the prune, host-c serves under the new root only.
        #expect(fleet.wait(seconds: 10) { inside() == "hello from cache\n" } != nil)
        let after = RequestLoop(inside, expect: "hello from cache\n")
        Thread.sleep(forTimeInterval: 3)
        let (meshOK, meshFailures) = mesh.finish()
        let (afterOK, afterFailures) = after.finish()
        #expect(meshFailures.isEmpty && meshOK > 50, "host-a → host-b: \(meshOK) ok, failed: \(meshFailures)")
        #expect(afterFailures.isEmpty && afterOK > 5, "inside host-c after the prune: \(afterOK) ok, failed: \(afterFailures)")
        #expect(fleet.throughUpstream() == "hello from db\n")
        expectConverged(fleet)
    }
}
