import ConnectdCore
import Foundation
import Testing

/// Damaged files in data_dir, one kind at a time, as the README's table promises: ordinary
/// records are moved aside and the agent starts; the CA, the node ID and an unknowable revision
/// stop it with a message naming the file, and nothing is replaced behind the operator's back.
@Suite(.serialized) struct DamagedStateTests {
    /// A data_dir that held an agent with one API service, and the trust domain it had.
    static func populated() throws -> (dir: String, trustDomain: String, index: Int) {
        let dir = makeTemporaryDirectory("damage")
        let agent = try AgentProcess(["-data-dir", dir])
        #expect(try agent.put("/v1/agent/service/register", body: #"{"Name": "api", "Port": 9000}"#).status == 200)
        #expect(try agent.put("/v1/agent/service/register", body: #"{"Name": "gone", "Port": 9001}"#).status == 200)
        #expect(try agent.put("/v1/agent/service/deregister/gone").status == 200)
        let roots = try JSONParser.parse(try agent.get("/v1/agent/connect/ca/roots").body)
        let index = Int(try agent.get("/v1/agent/services").header("x-consul-index") ?? "") ?? 0
        #expect(agent.stop() == 0)
        return (dir, roots["TrustDomain"]?.stringValue ?? "", index)
    }

    /// `connectd agent` that must refuse to start: bounded, its exit status and output.
    static func refusedStart(_ dir: String) throws -> CommandResult {
        try runProcess("/usr/bin/timeout", ["30", connectdBinary(), "agent", "-http-port", "0", "-data-dir", dir])
    }

    static func trustDomain(_ agent: AgentProcess) throws -> String {
        try JSONParser.parse(try agent.get("/v1/agent/connect/ca/roots").body)["TrustDomain"]?.stringValue ?? ""
    }

    @Test(arguments: [
        ("ca/roots.json", "{ truncated"), ("ca/config.json", ""), ("agent/ca.json", #"{"Value": 1}"#),
    ])
    func aDamagedCAStopsTheAgentUntilResetOnPurpose(file: String, content: String) throws {
        let (dir, trustDomain, _) = try Self.populated()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try content.write(toFile: dir + "/state/" + file, atomically: false, encoding: .utf8)
        for _ in 0..<2 {  // a second try is refused as well: nothing was moved or replaced
            let refused = try Self.refusedStart(dir)
            #expect(refused.status == 1, "\(refused.output)")
            #expect(refused.output.contains("\(dir)/state/\(file)"), "\(refused.output)")
            #expect(refused.output.contains("connectd ca reset -data-dir \(dir)"))
            #expect(!refused.output.contains("created the certificate authority"))
        }
        let reset = try runConnectd(["ca", "reset", "-data-dir", dir])
        #expect(reset.status == 0, "\(reset.output)")
        #expect(reset.output.contains("moved damaged \(dir)/state/\(file)"), "\(reset.output)")
        let quarantined = try FileManager.default.contentsOfDirectory(atPath: dir + "/quarantine")
        #expect(quarantined.contains { $0.hasPrefix("ca_roots.json.") }, "the old roots (and key) are kept aside: \(quarantined)")
        let agent = try AgentProcess(["-data-dir", dir])
        let newDomain = try Self.trustDomain(agent)
        #expect(!newDomain.isEmpty && newDomain != trustDomain)
        #expect(try JSONParser.parse(try agent.get("/v1/agent/services").body)["api"] != nil, "services are untouched")
        #expect(agent.stop() == 0)
    }

    @Test func lostRootsAreDamageNotAFreshStart() throws {
        let (dir, _, _) = try Self.populated()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.removeItem(atPath: dir + "/state/ca/roots.json")
        let refused = try Self.refusedStart(dir)
        #expect(refused.status == 1)
        #expect(refused.output.contains("certificate authority in data_dir \(dir) is damaged"), "\(refused.output)")
    }

    @Test func aDamagedNodeIDStopsTheAgent() throws {
        let (dir, _, _) = try Self.populated()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "\u{0}\u{0}".write(toFile: dir + "/state/agent/node-id.json", atomically: false, encoding: .utf8)
        let refused = try Self.refusedStart(dir)
        #expect(refused.status == 1)
        #expect(refused.output.contains("\(dir)/state/agent/node-id.json"), "\(refused.output)")
        #expect(refused.output.contains("delete it to give the host a new ID"))
    }

    @Test func theIndexNeverGoesBackwards() throws {
        let (dir, trustDomain, index) = try Self.populated()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "{\"Rev".write(toFile: dir + "/state/revision.json", atomically: false, encoding: .utf8)
        let agent = try AgentProcess(["-data-dir", dir])
        let after = Int(try agent.get("/v1/agent/services").header("x-consul-index") ?? "") ?? 0
        #expect(after >= index, "the journal vouches for the revision: \(after) < \(index)")
        #expect(try Self.trustDomain(agent) == trustDomain)
        #expect(agent.stop() == 0)

        // Both copies of the revision damaged: refused, named, and the way out given.
        try "{\"Rev".write(toFile: dir + "/state/revision.json", atomically: false, encoding: .utf8)
        try "garbage".write(toFile: dir + "/state/journal.json", atomically: false, encoding: .utf8)
        let refused = try Self.refusedStart(dir)
        #expect(refused.status == 1)
        #expect(refused.output.contains("\(dir)/state/revision.json"), "\(refused.output)")
        #expect(refused.output.contains("move it aside"))
    }

    @Test func damagedRecordsAreMovedAsideAndTheAgentStarts() throws {
        let (dir, trustDomain, _) = try Self.populated()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "{ nope".write(toFile: dir + "/state/services/api.json", atomically: false, encoding: .utf8)
        try "{ nope".write(toFile: dir + "/state/ca/serial.json", atomically: false, encoding: .utf8)  // obsolete key
        let agent = try AgentProcess(["-data-dir", dir])
        try agent.waitForLog("moved an unreadable state file aside")
        #expect(try JSONParser.parse(try agent.get("/v1/agent/services").body)["api"] == nil)
        #expect(try Self.trustDomain(agent) == trustDomain)
        #expect(agent.stop() == 0)
        let quarantined = try FileManager.default.contentsOfDirectory(atPath: dir + "/quarantine")
        #expect(quarantined.contains { $0.hasPrefix("services_api.json.") } && quarantined.contains { $0.hasPrefix("ca_serial.json.") })
    }

    @Test func oneAgentPerDataDirAndResetNeedsItStopped() throws {
        let dir = makeTemporaryDirectory("lock")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let agent = try AgentProcess(["-data-dir", dir])
        let second = try Self.refusedStart(dir)
        #expect(second.status == 1)
        #expect(second.output.contains("in use by another connectd (pid \(agent.process.processIdentifier))"), "\(second.output)")
        let reset = try runConnectd(["ca", "reset", "-data-dir", dir])
        #expect(reset.status == 1)
        #expect(reset.output.contains("in use by another connectd"))
        #expect(try !Self.trustDomain(agent).isEmpty)
        #expect(agent.stop() == 0)
    }
}
