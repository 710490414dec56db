import AgentConfig
import AgentHTTP
import ConnectdAgent
import ConnectdCore
import Foundation
import Logging

/// An agent running in this process on an ephemeral loopback port, with its own data_dir.
final class TestAgent: Sendable {
    let agent: Agent
    let port: Int
    let configDirectory: String
    let dataDirectory: String
    private let runTask: Task<Void, any Error>

    /// Starts an agent whose config directory holds `files` (name → JSON text).
    ///
    /// - Parameter dataDir: a data directory to use instead of a new one (a restart on the same state).
    static func start(files: [String: String] = [:], dev: Bool = false, flags: ConfigFragment = ConfigFragment(),
                      dataDir: String? = nil) async throws -> TestAgent {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("connectd-http-\(UUID().uuidString)").path
        let configDirectory = root + "/config"
        let dataDirectory = dataDir ?? root + "/data"
        try FileManager.default.createDirectory(atPath: configDirectory, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: configDirectory + "/" + name, atomically: true, encoding: .utf8) }
        var flags = flags
        flags.httpPort = 0
        if !dev { flags.dataDir = dataDirectory }
        let options = AgentOptions(sources: ConfigSources(directories: [configDirectory]), flags: flags, dev: dev, hostName: "testnode")
        var logger = Logger(label: "test-agent")
        logger.logLevel = .critical
        let agent = try Agent(options: options, build: BuildInfo(version: "test"), logger: logger)
        try await agent.start()
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let runTask = Task { try await agent.run { port in continuation.yield(port) } }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw SimpleHTTPError(description: "agent did not start") }
        return TestAgent(agent: agent, port: port, configDirectory: configDirectory, dataDirectory: dataDirectory, runTask: runTask)
    }

    private init(agent: Agent, port: Int, configDirectory: String, dataDirectory: String, runTask: Task<Void, any Error>) {
        self.agent = agent
        self.port = port
        self.configDirectory = configDirectory
        self.dataDirectory = dataDirectory
        self.runTask = runTask
    }

    func writeConfig(_ name: String, _ text: String) throws {
        try text.write(toFile: configDirectory + "/" + name, atomically: true, encoding: .utf8)
    }

    /// Sends a request on a separate thread (the client blocks) and returns the response.
    func request(_ method: String, _ target: String, headers: [(String, String)] = [], body: String? = nil,
                 timeoutSeconds: Int = 30) async throws -> SimpleHTTPResponse {
        let port = port
        return try await withCheckedThrowingContinuation { continuation in
            Thread {
                do {
                    let response = try SimpleHTTPClient.send(method: method, host: "127.0.0.1", port: port, target: target,
                                                             headers: headers, body: Array((body ?? "").utf8), timeoutSeconds: timeoutSeconds)
                    continuation.resume(returning: response)
                } catch {
                    continuation.resume(throwing: error)
                }
            }.start()
        }
    }

    func json(_ target: String, headers: [(String, String)] = []) async throws -> JSONValue {
        try JSONParser.parse(try await request("GET", target, headers: headers).body)
    }

    /// Runs `body` with an agent started from `files`, then stops it and waits for the stop, also
    /// when `body` throws.
    static func with(files: [String: String] = [:], dev: Bool = false, flags: ConfigFragment = ConfigFragment(),
                     dataDir: String? = nil, _ body: (TestAgent) async throws -> Void) async throws {
        let agent = try await start(files: files, dev: dev, flags: flags, dataDir: dataDir)
        do {
            try await body(agent)
            await agent.stop()
        } catch {
            await agent.stop()
            throw error
        }
    }

    func stop() async {
        runTask.cancel()
        _ = await runTask.result
        try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: configDirectory).deletingLastPathComponent().path)
    }
}
