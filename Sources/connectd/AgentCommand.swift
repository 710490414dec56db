// `connectd agent`: Consul-style flags over Consul agent JSON config.

import AgentConfig
import AgentHTTP
import ArgumentParser
import ConnectdAgent
import Foundation
import Logging
import SystemdSupport

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Run the agent (flags accept one or two dashes, as Consul's).")

    @Flag(name: .consul("dev"), help: "Development mode: temporary data_dir, debug logs, pretty JSON; everything removed on exit.")
    var dev = false

    @Option(name: .consul("config-file"), help: "A config file to load (repeatable).")
    var configFiles: [String] = []

    @Option(name: .consul("config-dir"), help: "A directory whose *.json and *.hcl files load in lexical order (repeatable).")
    var configDirs: [String] = []

    @Option(name: .consul("data-dir"), help: "Where durable state lives.")
    var dataDir: String?

    @Option(name: .consul("datacenter"), help: "Datacenter name (default dc1).")
    var datacenter: String?

    @Option(name: .consul("node"), help: "Node name (default: the host name).")
    var node: String?

    @Option(name: .consul("client"), help: "Address the HTTP API listens on (default 127.0.0.1).")
    var client: String?

    @Option(name: .consul("bind"), help: "Address managed proxies bind by default (default 0.0.0.0).")
    var bind: String?

    @Option(name: .consul("http-port"), help: "HTTP API port (default 8500; 0 picks a free port).")
    var httpPort: Int?

    @Option(name: .consul("log-level"), help: "trace, debug, info, warn or err.")
    var logLevel: String?

    @Flag(name: .consul("log-json"), help: "Log JSON lines.")
    var logJSON = false

    func run() async throws {
        var flags = ConfigFragment()
        flags.dataDir = dataDir
        flags.datacenter = datacenter
        flags.nodeName = node
        flags.clientAddr = client
        flags.bindAddr = bind
        flags.httpPort = httpPort
        flags.logLevel = logLevel
        if logJSON { flags.logJSON = true }
        let options = AgentOptions(sources: ConfigSources(files: configFiles, directories: configDirs), flags: flags,
                                   dev: dev, hostName: ProcessEnvironment.hostName())
        if let httpPort, !(0...65535).contains(httpPort) {
            throw ValidationError("-http-port: \(httpPort) is out of range (0-65535)")
        }

        // Log with the configured level; an invalid config is reported before anything starts.
        let preview: AgentConfiguration
        do {
            preview = try options.loadConfiguration()
        } catch {
            for problem in error.problems { FileHandle.standardError.write(Data("\(problem)\n".utf8)) }
            FileHandle.standardError.write(Data("connectd: invalid configuration (\(error.problems.count) problem(s)); nothing was started\n".utf8))
            let notifier = SystemdNotifier()
            notifier.failed("invalid configuration: \(error.problems.first?.description ?? "")", errno: EINVAL)
            notifier.flush()
            throw ExitCode(1)
        }
        let level = LogLevelMapping.swiftLogLevel(preview.logLevel)
        let json = preview.logJSON
        LoggingSystem.bootstrap { label in ConsoleLogHandler(label: label, level: level, json: json) }
        let logger = Logger(label: "agent")

        do {
            let agent = try Agent(options: options, build: BuildInfo(version: connectdVersion), logger: logger)
            try await agent.start()
            try await agent.run()
        } catch let error as AgentStartError {
            logger.error("\(error.description)")
            let notifier = SystemdNotifier()
            notifier.failed("failed: \(error.description)")
            notifier.flush()
            throw ExitCode(1)
        }
    }
}
