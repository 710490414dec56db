// Builds a proxy's spec from state and config: the default command and a curated environment.

import AgentConfig
import AgentState
import AgentStore

/// Variables that belong to connectd's own service manager contract and never reach a proxy.
public let scrubbedEnvironmentNames = SupervisionSettings.reservedEnvironmentNames

public struct SpecBuilder: Sendable {
    /// connectd's own environment (for the base variables and the pass-through list).
    public var agentEnvironment: [String: String]
    /// The command used when neither the definition nor `proxy_defaults` names one.
    public var builtinCommand: [String]
    /// `host:port` of the agent's HTTP API, as a proxy should dial it.
    public var httpAddress: String

    public init(agentEnvironment: [String: String], builtinCommand: [String], httpAddress: String) {
        self.agentEnvironment = agentEnvironment
        self.builtinCommand = builtinCommand
        self.httpAddress = httpAddress
    }

    /// Base variables every proxy gets from connectd's environment when set.
    static let baseNames = ["PATH", "HOME", "LANG", "TZ"]
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    public func spec(for proxy: ManagedProxy, configuration: AgentConfiguration) -> ProxySpec {
        let supervision = ResolvedSupervision(configuration.proxyDefaults.supervision.overlaid(by: proxy.request.supervision))
        var environment: [String: String] = ["PATH": Self.defaultPath]
        for name in Self.baseNames + supervision.environmentPassthrough where !scrubbedEnvironmentNames.contains(name) {
            if let value = agentEnvironment[name] { environment[name] = value }
        }
        environment["CONSUL_HTTP_ADDR"] = httpAddress
        environment["CONSUL_HTTP_SSL"] = "false"
        environment["CONSUL_HTTP_TOKEN"] = proxy.token
        environment["CONSUL_PROXY_ID"] = proxy.proxyServiceID
        environment["CONSUL_PROXY_TOKEN"] = proxy.token
        environment["CONNECT_PROXY_ID"] = proxy.proxyServiceID
        environment["CONNECT_PROXY_TOKEN"] = proxy.token
        return ProxySpec(
            proxyID: proxy.proxyServiceID, targetServiceID: proxy.targetServiceID,
            execMode: proxy.execMode(defaults: configuration.proxyDefaults),
            command: proxy.command(defaults: configuration.proxyDefaults, builtin: builtinCommand),
            environment: environment, supervision: supervision)
    }

    /// `host:port` a proxy should dial for an agent listening on `clientAddr:port`
    /// (wildcards become loopback; IPv6 is bracketed).
    public static func dialAddress(clientAddr: String, port: Int) -> String {
        switch clientAddr {
        case "0.0.0.0", "": return "127.0.0.1:\(port)"
        case "::": return "[::1]:\(port)"
        default: return clientAddr.contains(":") ? "[\(clientAddr)]:\(port)" : "\(clientAddr):\(port)"
        }
    }
}

/// Resolves argv[0] at spawn time, with errors that name the proxy.
public enum ExecutableResolver {
    public struct NotFound: Error, CustomStringConvertible {
        public var description: String
    }

    public static func resolve(_ command: [String], proxyID: String, path: String) throws(NotFound) -> String {
        guard let first = command.first, !first.isEmpty else {
            throw NotFound(description: "proxy \(proxyID): empty command")
        }
        if first.hasPrefix("/") {
            guard access(first, X_OK) == 0 else {
                throw NotFound(description: "proxy \(proxyID): command \(first) is not an executable file")
            }
            return first
        }
        if first.contains("/") {
            throw NotFound(description: "proxy \(proxyID): command path \"\(first)\" must be absolute or a name found in PATH")
        }
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(first)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw NotFound(description: "proxy \(proxyID): command \"\(first)\" not found in PATH (\(path))")
    }
}

#if canImport(Glibc)
import Glibc
#endif
