import ConnectdCore
import Foundation
import Testing

/// `connectd ca rotate` against a running agent binary; the CA survives a restart.
@Suite struct CARotateTests {
    func roots(_ agent: AgentProcess) throws -> JSONValue {
        try JSONParser.parse(try agent.get("/v1/agent/connect/ca/roots").body)
    }

    func rootCount(_ body: JSONValue) -> Int {
        if case .array(let list)? = body["Roots"] { return list.count }
        return 0
    }

    @Test func rotateFromTheCLIAndKeepTheCAAcrossRestarts() throws {
        let dir = makeTemporaryDirectory("ca-rotate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let arguments = ["-data-dir", dir + "/data"]
        let agent = try AgentProcess(arguments)
        let before = try roots(agent)
        let rotate = try runConnectd(["ca", "rotate", "-http-addr", "127.0.0.1:\(agent.port)"])
        #expect(rotate.status == 0, "\(rotate.output)")
        let after = try roots(agent)
        let oldID = try #require(before["ActiveRootID"]?.stringValue)
        let newID = try #require(after["ActiveRootID"]?.stringValue)
        #expect(rotate.output.contains("Rotated the CA root: \(oldID) -> \(newID)"))
        #expect(rootCount(after) == 2)
        try agent.waitForLog("rotated the CA root")

        // The same through CONSUL_HTTP_ADDR, with a key from a file.
        try #require(try openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "k.pem"], in: dir).status == 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: connectdBinary())
        process.arguments = ["ca", "rotate", "-private-key", dir + "/k.pem"]
        process.environment = ["CONSUL_HTTP_ADDR": "127.0.0.1:\(agent.port)"]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(rootCount(try roots(agent)) == 3)

        let missing = try runConnectd(["ca", "rotate", "-http-addr", "127.0.0.1:\(agent.port)", "-private-key", dir + "/nope.pem"])
        #expect(missing.status != 0 && missing.output.contains("cannot read \(dir)/nope.pem"))
        let config = try runConnectd(["ca", "get-config", "-http-addr", "127.0.0.1:\(agent.port)"])
        #expect(config.status == 0 && config.output.contains("\"LeafCertTTL\"") && !config.output.contains("PRIVATE KEY"))

        let final = try roots(agent)
        #expect(agent.stop() == 0)
        let restarted = try AgentProcess(arguments)
        #expect(try roots(restarted) == final)
        #expect(restarted.stop() == 0)
    }
}

/// Runs `openssl` in `directory`.
func openssl(_ arguments: [String], in directory: String) throws -> CommandResult {
    try runProcess("/usr/bin/openssl", arguments, in: directory)
}
