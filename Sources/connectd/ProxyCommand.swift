// `connectd proxy`: the built-in mTLS proxy, managed (identity from CONSUL_PROXY_ID) or
// unmanaged (`-service web -upstream db:9191`, like `consul connect proxy`).

import AgentConfig
import ArgumentParser
import ConnectdAgent
import ConnectProxy
import Foundation
import Logging

struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Run the built-in mutual-TLS proxy (the default managed proxy command).",
        discussion: """
        Managed: the proxy ID comes from $CONSUL_PROXY_ID or $CONNECT_PROXY_ID (or -proxy-id), the token from
        $CONSUL_PROXY_TOKEN, $CONNECT_PROXY_TOKEN or $CONSUL_HTTP_TOKEN (or -token), the agent from $CONSUL_HTTP_ADDR.
        Unmanaged: -service names the service to act for; -upstream NAME:PORT (repeatable) opens local listeners
        that reach NAME over mTLS; -listen and -service-addr add a public listener in front of the service.
        """)

    @Option(name: .consul("proxy-id"), help: "The managed proxy's service ID.")
    var proxyID: String?

    @Option(name: .consul("token"), help: "ACL token.")
    var token: String?

    @Option(name: .consul("http-addr"), help: "Agent HTTP address (default: $CONSUL_HTTP_ADDR or 127.0.0.1:8500).")
    var httpAddr: String?

    @Option(name: .consul("service"), help: "Unmanaged: the service this proxy acts for.")
    var service: String?

    @Option(name: .consul("upstream"), help: "Unmanaged: NAME:PORT, a local listener on 127.0.0.1:PORT reaching NAME (repeatable).")
    var upstreams: [String] = []

    @Option(name: .consul("listen"), help: "Unmanaged: public mTLS listener address (host:port).")
    var listen: String?

    @Option(name: .consul("service-addr"), help: "Unmanaged: the local service's address behind -listen (host:port).")
    var serviceAddr: String?

    @Option(name: .consul("log-level"), help: "trace, debug, info, warn or err.")
    var logLevel: String = "info"

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        func env(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        guard let level = LogLevel(parsing: logLevel) else { throw ValidationError("-log-level: invalid level \"\(logLevel)\"") }
        let swiftLevel = LogLevelMapping.swiftLogLevel(level)
        LoggingSystem.bootstrap { label in ConsoleLogHandler(label: label, level: swiftLevel, json: false) }

        let address = try AgentClientOptions.address(flag: httpAddr)
        let secret = token ?? env("CONSUL_PROXY_TOKEN") ?? env("CONNECT_PROXY_TOKEN") ?? env("CONSUL_HTTP_TOKEN") ?? ""
        let agent = AgentClient(host: address.host, port: address.port, token: secret)

        let mode: ProxyRunner.Mode
        var logger = Logger(label: "proxy")
        if let service {
            mode = .unmanaged(try unmanagedConfig(service: service))
            logger[metadataKey: "service"] = "\(service)"
        } else if let id = proxyID ?? env("CONSUL_PROXY_ID") ?? env("CONNECT_PROXY_ID") {
            mode = .managed(proxyID: id)
            logger[metadataKey: "proxy"] = "\(id)"
        } else {
            throw ValidationError("no proxy identity: set -proxy-id (or $CONSUL_PROXY_ID), or -service for an unmanaged proxy")
        }
        logger.info("starting", metadata: ["agent": "\(address.host):\(address.port)"])
        let finalLogger = logger
        let group = ProxyProcess.group
        try await ProxyRunner(mode: mode, agent: agent, logger: finalLogger).run(on: group) {
            do {
                let signal = try await ProxyProcess.firstSignal(of: [SIGTERM, SIGINT], on: group.next())
                finalLogger.info("signal received", metadata: ["signal": "\(signal == SIGTERM ? "SIGTERM" : "SIGINT")"])
            } catch {
                finalLogger.error("cannot wait for stop signals; stopping", metadata: ["error": "\(error)"])
            }
        }
    }

    func unmanagedConfig(service: String) throws -> ProxyConfig {
        var config = ProxyConfig(targetServiceName: service)
        for text in upstreams {
            let parts = text.split(separator: ":")
            guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else {
                throw ValidationError("-upstream: expected NAME:PORT, got \"\(text)\"")
            }
            config.upstreams.append(UpstreamConfig(destinationName: String(parts[0]), localBindPort: port))
        }
        if let listen {
            guard let (host, port) = ProxyConfig.hostPort(listen) else { throw ValidationError("-listen: expected host:port, got \"\(listen)\"") }
            guard let serviceAddr, let (serviceHost, servicePort) = ProxyConfig.hostPort(serviceAddr) else {
                throw ValidationError("-listen needs -service-addr host:port (where the service itself listens)")
            }
            config.publicListener = PublicListenerConfig(bindAddress: host, bindPort: port, localServiceHost: serviceHost, localServicePort: servicePort)
        }
        guard config.publicListener != nil || !config.upstreams.isEmpty else {
            throw ValidationError("an unmanaged proxy needs -upstream NAME:PORT or -listen with -service-addr")
        }
        return config
    }
}
