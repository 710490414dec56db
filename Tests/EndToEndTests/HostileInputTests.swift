import ConnectdCore
import Foundation
import Glibc
import Testing

/// Input an attacker (or an accident) puts in front of the binary: odd files in a config
/// directory, secrets in requests that must not reach the log.
@Suite(.serialized) struct HostileInputTests {
    /// A FIFO or a directory named `*.json` in a config dir makes `connectd reload` fail at once
    /// (it used to hang forever on the FIFO), naming the file; the old config keeps running.
    @Test func reloadRefusesWhatIsNotARegularFile() throws {
        let dir = makeTemporaryDirectory("fifo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let configDir = dir + "/config"
        try FileManager.default.createDirectory(atPath: configDir, withIntermediateDirectories: true)
        try #"{"service": {"name": "web", "port": 8080}}"#.write(toFile: configDir + "/web.json", atomically: true, encoding: .utf8)
        let agent = try AgentProcess(["-data-dir", dir + "/data", "-config-dir", configDir])

        for (name, make) in [("fifo.json", { (path: String) in mkfifo(path, 0o600) }), ("x.json", { mkdir($0, 0o700) })] {
            #expect(make(configDir + "/" + name) == 0)
            try #"{"service": {"name": "db", "port": 5432}}"#.write(toFile: configDir + "/db.json", atomically: true, encoding: .utf8)
            let started = Date()
            // `timeout` bounds a hang (exit 124) so the suite cannot stall on a regression.
            let reload = try runProcess("/usr/bin/timeout", ["10", connectdBinary(), "reload", "-http-addr", "127.0.0.1:\(agent.port)"])
            let elapsed = Date().timeIntervalSince(started)
            #expect(reload.status == 1, "\(reload.output)")
            #expect(elapsed < 2, "reload took \(elapsed) s")
            #expect(reload.output.contains("\(name): not a regular file"), "\(reload.output)")
            let services = try JSONParser.parse(try agent.get("/v1/agent/services").body)
            #expect(services["web"] != nil && services["db"] == nil, "the old config keeps running")
            try FileManager.default.removeItem(atPath: configDir + "/" + name)
        }
        // SIGHUP takes the same path and does not hang either.
        #expect(mkfifo(configDir + "/fifo.json", 0o600) == 0)
        agent.signal(SIGHUP)
        try agent.waitForLog("fifo.json: not a regular file", seconds: 10)
        #expect(try agent.get("/v1/agent/self").status == 200)
        #expect(agent.stop() == 0)
    }

    /// At `trace`, no token carrier (`?token=`, `?TOKEN=`, `X-Consul-Token`, `Authorization`)
    /// puts its secret into the agent's output, also for requests that fail.
    @Test func tokensNeverReachTheLog() throws {
        let dir = makeTemporaryDirectory("tokens")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"acl": {"enabled": true, "default_policy": "deny", "tokens": {"master": "master-secret-1"}}}"#
            .write(toFile: dir + "/acl.json", atomically: true, encoding: .utf8)
        let agent = try AgentProcess(["-data-dir", dir + "/data", "-config-dir", dir, "-log-level", "trace"])
        let secrets = ["query-secret-2", "upper-secret-3", "header-secret-4", "bearer-secret-5", "mixed-secret-6"]
        let requests: [(String, [(String, String)])] = [
            ("/v1/agent/self?token=master-secret-1", []),
            ("/v1/agent/self?token=\(secrets[0])&pretty", []),
            ("/v1/agent/self?TOKEN=\(secrets[1])", []),
            ("/v1/agent/self?ToKeN=\(secrets[4])", []),
            ("/v1/agent/self", [("X-Consul-Token", secrets[2])]),
            ("/v1/agent/self", [("Authorization", "Bearer \(secrets[3])")]),
            ("/v1/agent/services", [("X-Consul-Token", "master-secret-1")]),
            ("/v1/agent/nosuch?token=\(secrets[0])", [("Authorization", "Bearer \(secrets[3])")]),
        ]
        for (target, headers) in requests {
            _ = try SimpleHTTPClient.send(method: "GET", host: "127.0.0.1", port: agent.port, target: target, headers: headers)
        }
        _ = try SimpleHTTPClient.send(method: "PUT", host: "127.0.0.1", port: agent.port, target: "/v1/agent/service/register?token=\(secrets[0])",
                                      headers: [("X-Consul-Token", secrets[2])], body: Array("{ not json".utf8))
        try agent.waitForLog("/v1/agent/service/register")
        #expect(agent.stop() == 0)
        let log = agent.log
        #expect(log.contains("<hidden>"), "the requests were logged")
        for secret in secrets + ["master-secret-1"] {
            #expect(!log.contains(secret), "\(secret) is in the log")
        }
    }
}
