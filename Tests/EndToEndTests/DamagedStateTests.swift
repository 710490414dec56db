import ConnectdCore
import Foundation
import Testing

/// Damaged files in data_dir, one kind at a time, as the README's table promises: ordinary
/// records are moved aside and the agent starts; the CA, the node ID and an unknowable revision
/// stop it with a message naming the file, and nothing is replaced behind the operator's back.
@Suite(.serialized) struct DamagedStateTests {
    /// A data_dir that held an agent with one API service and its proxy (not run: root without
    /// allow_managed_root) and one intention, and the trust domain it had.
    static func populated() throws -> (dir: String, trustDomain: String, index: Int) {
        let dir = makeTemporaryDirectory("damage")
        try #"{"connect": {"proxy": {"allow_managed_api_registration": true}}}"#.write(toFile: dir + "/agent.json", atomically: true, encoding: .utf8)
        let agent = try AgentProcess(Self.arguments(dir))
        #expect(try agent.put("/v1/agent/service/register", body: #"{"Name": "api", "Port": 9000, "Connect": {"Proxy": {}}}"#).status == 200)
        #expect(try agent.put("/v1/agent/service/register", body: #"{"Name": "gone", "Port": 9001}"#).status == 200)
        #expect(try agent.put("/v1/agent/service/deregister/gone").status == 200)
        let created = try SimpleHTTPClient.send(method: "POST", host: "127.0.0.1", port: agent.port, target: "/v1/connect/intentions",
                                                body: Array(#"{"SourceName": "web", "DestinationName": "api", "Action": "deny"}"#.utf8))
        #expect(created.status == 200)
        let roots = try JSONParser.parse(try agent.get("/v1/agent/connect/ca/roots").body)
        let index = Int(try agent.get("/v1/agent/services").header("x-consul-index") ?? "") ?? 0
        #expect(agent.stop() == 0)
        return (dir, roots["TrustDomain"]?.stringValue ?? "", index)
    }

    static func arguments(_ dir: String) -> [String] { ["-data-dir", dir + "/data", "-config-file", dir + "/agent.json"] }

    /// The four ways a file is found damaged.
    static func damage(_ path: String, _ kind: String) throws {
        switch kind {
        case "empty": try "".write(toFile: path, atomically: false, encoding: .utf8)
        case "garbage": try "\u{7}garbage{".write(toFile: path, atomically: false, encoding: .utf8)
        case "half":
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path))
        default: try #"{"ModRevision": 1, "Value": 5}"#.write(toFile: path, atomically: false, encoding: .utf8)
        }
    }

    static let kinds = ["empty", "garbage", "half", "wrong-shape"]

    /// `connectd agent` that must refuse to start: bounded, its exit status and output.
    static func refusedStart(_ dir: String) throws -> CommandResult {
        try runProcess("/usr/bin/timeout", ["30", connectdBinary(), "agent", "-http-port", "0"] + arguments(dir))
    }

    static func trustDomain(_ agent: AgentProcess) throws -> String {
        try JSONParser.parse(try agent.get("/v1/agent/connect/ca/roots").body)["TrustDomain"]?.stringValue ?? ""
    }

    @Test(arguments: ["ca/roots.json", "ca/config.json", "agent/ca.json"], kinds)
    func aDamagedCAStopsTheAgentUntilResetOnPurpose(file: String, kind: String) throws {
        let (dir, trustDomain, _) = try Self.populated()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/data"
        try Self.damage(data + "/state/" + file, kind)
        for _ in 0..<2 {  // a second try is refused as well: nothing was moved or replaced
            let refused = try Self.refusedStart(dir)
            #expect(refused.status == 1, "\(kind): \(refused.output)")
            #expect(refused.output.contains(kind == "wrong-shape" ? "is damaged" : "\(data)/state/\(file)"), "\(kind): \(refused.output)")
            #expect(refused.output.contains("connectd ca reset -data-dir \(data)"))
            #expect(!refused.output.contains("created the certificate authority"))
        }
        let reset = try runConnectd(["ca", "reset", "-data-dir", data])
        #expect(reset.status == 0, "\(reset.output)")
        let quarantined = try FileManager.default.contentsOfDirectory(atPath: data + "/quarantine")
        #expect(quarantined.contains { $0.hasPrefix("ca_roots.json.") }, "the old roots (and key) are kept aside: \(quarantined)")
        let agent = try AgentProcess(Self.arguments(dir))
        let newDomain = try Self.trustDomain(agent)
        #expect(!newDomain.isEmpty && newDomain != trustDomain)
        #expect(try JSONParser.parse(try agent.get("/v1/agent/services").body)["api"] != nil, "services are untouched")
        #expect(agent.stop() == 0)
    }

    @Test func lostRootsAreDamageNotAFreshStart() throws {
        let (dir, _, _) = try Self.populated()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.removeItem(atPath: dir + "/data/state/ca/roots.json")
        let refused = try Self.refusedStart(dir)
        #expect(refused.status == 1)
        #expect(refused.output.contains("certificate authority in data_dir \(dir)/data is damaged"), "\(refused.output)")
    }

    @Test(arguments: kinds)
    func aDamagedNodeIDStopsTheAgent(kind: String) throws {
        let (dir, _, _) = try Self.populated()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.damage(dir + "/data/state/agent/node-id.json", kind)
        let refused = try Self.refusedStart(dir)
        #expect(refused.status == 1)
        #expect(refused.output.contains("\(dir)/data/state/agent/node-id.json"), "\(kind): \(refused.output)")
        #expect(refused.output.contains("delete it to give the host a new ID"))
    }

    /// An intention is never set aside: a lost deny would allow traffic without a word.
    @Test(arguments: kinds)
    func aDamagedIntentionStopsTheAgent(kind: String) throws {
        let (dir, _, _) = try Self.populated()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = dir + "/data/state/intentions"
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: folder).first)
        try Self.damage(folder + "/" + file, kind)
        let refused = try Self.refusedStart(dir)
        #expect(refused.status == 1)
        #expect(refused.output.contains("\(folder)/\(file)"), "\(kind): \(refused.output)")
        #expect(refused.output.contains("an intention: restore the file"))
    }

    @Test func theIndexNeverGoesBackwards() throws {
        let (dir, trustDomain, index) = try Self.populated()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "{\"Rev".write(toFile: dir + "/data/state/revision.json", atomically: false, encoding: .utf8)
        let agent = try AgentProcess(Self.arguments(dir))
        let after = Int(try agent.get("/v1/agent/services").header("x-consul-index") ?? "") ?? 0
        #expect(after >= index, "the journal vouches for the revision: \(after) < \(index)")
        #expect(try Self.trustDomain(agent) == trustDomain)
        #expect(agent.stop() == 0)

        // Both copies of the revision damaged: refused, named, and the way out given.
        try "{\"Rev".write(toFile: dir + "/data/state/revision.json", atomically: false, encoding: .utf8)
        try "garbage".write(toFile: dir + "/data/state/journal.json", atomically: false, encoding: .utf8)
        let refused = try Self.refusedStart(dir)
        #expect(refused.status == 1)
        #expect(refused.output.contains("\(dir)/data/state/revision.json"), "\(refused.output)")
        #expect(refused.output.contains("move it aside"))
    }

    /// Ordinary records (an API service, a proxy's token record, the obsolete serial counter)
    /// are moved aside and the agent starts: the operator registers the service again.
    @Test(arguments: kinds)
    func damagedRecordsAreMovedAsideAndTheAgentStarts(kind: String) throws {
        let (dir, trustDomain, _) = try Self.populated()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = dir + "/data/state"
        try Self.damage(state + "/services/api.json", kind)
        try Self.damage(state + "/proxies/api-proxy.json", kind)
        try "{ nope".write(toFile: state + "/ca/serial.json", atomically: false, encoding: .utf8)
        let agent = try AgentProcess(Self.arguments(dir))
        try agent.waitForLog("moved an unreadable state")
        #expect(try JSONParser.parse(try agent.get("/v1/agent/services").body)["api"] == nil)
        #expect(try Self.trustDomain(agent) == trustDomain)
        // Leaf serials are random: no file decides them, so none can make one repeat.
        let serials = try (0..<3).map { _ in try JSONParser.parse(try agent.get("/v1/agent/connect/ca/leaf/web").body)["SerialNumber"]?.stringValue ?? "" }
        #expect(Set(serials).count >= 1 && !serials.contains(""))
        #expect(agent.stop() == 0)
        let quarantined = try FileManager.default.contentsOfDirectory(atPath: dir + "/data/quarantine")
        #expect(quarantined.contains { $0.hasPrefix("ca_serial.json.") }, "\(quarantined)")
        #expect(quarantined.contains { $0.hasPrefix("services_api.json.") } || kind == "wrong-shape", "\(kind): \(quarantined)")
        #expect(quarantined.contains { $0.hasPrefix("proxies_api-proxy.json.") } || kind == "wrong-shape", "\(kind): \(quarantined)")
    }

    @Test func oneAgentPerDataDirAndResetNeedsItStopped() throws {
        let dir = makeTemporaryDirectory("lock")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "{}".write(toFile: dir + "/agent.json", atomically: true, encoding: .utf8)
        let agent = try AgentProcess(Self.arguments(dir))
        let second = try Self.refusedStart(dir)
        #expect(second.status == 1)
        #expect(second.output.contains("in use by another connectd (pid \(agent.process.processIdentifier))"), "\(second.output)")
        let reset = try runConnectd(["ca", "reset", "-data-dir", dir + "/data"])
        #expect(reset.status == 1)
        #expect(reset.output.contains("in use by another connectd"))
        #expect(try !Self.trustDomain(agent).isEmpty)
        #expect(agent.stop() == 0)
    }
}
