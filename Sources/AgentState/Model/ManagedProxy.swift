// A managed proxy as the agent knows it: identity, request, token and bind port.

import AgentConfig
import AgentStore
import Authorization
import ConnectdCore

/// Where a service or proxy came from; it decides what reload and deregister may remove.
public enum RegistrationSource: String, Sendable, Hashable {
    case configFile = "file"
    case api
}

/// One managed proxy. Its process state lives in the supervisor, not here.
public struct ManagedProxy: Sendable, Hashable {
    /// `<target id>-proxy`.
    public var proxyServiceID: String
    /// `<target name>-proxy`.
    public var proxyServiceName: String
    public var targetServiceID: String
    public var targetServiceName: String
    /// The `connect.proxy` block as registered (mode and command may be empty: defaults apply).
    public var request: ManagedProxyRequest
    /// Secret handed to the proxy process; kept across reloads and restarts.
    public var token: String
    /// The port the proxy listens on: `config.bind_port` when given, else allocated.
    public var bindPort: Int
    /// True when `bindPort` came from `config.bind_port` rather than the allocator.
    public var bindPortIsExplicit: Bool
    public var source: RegistrationSource

    public init(
        target: ServiceDefinition, request: ManagedProxyRequest, token: String, bindPort: Int,
        bindPortIsExplicit: Bool, source: RegistrationSource
    ) {
        proxyServiceID = target.proxyServiceID
        proxyServiceName = target.proxyServiceName
        targetServiceID = target.id
        targetServiceName = target.name
        self.request = request
        self.token = token
        self.bindPort = bindPort
        self.bindPortIsExplicit = bindPortIsExplicit
        self.source = source
    }

    /// The exec mode after defaults: the request's, else `proxy_defaults.exec_mode`, else daemon.
    public func execMode(defaults: ProxyDefaults) -> ExecMode {
        request.execMode ?? defaults.execMode ?? .daemon
    }

    /// The command after defaults: the request's, else the mode's default command, else `builtin`.
    public func command(defaults: ProxyDefaults, builtin: [String]) -> [String] {
        if !request.command.isEmpty { return request.command }
        let fallback = execMode(defaults: defaults) == .daemon ? defaults.daemonCommand : defaults.scriptCommand
        return fallback.isEmpty ? builtin : fallback
    }

    /// `config.bind_address` as registered, or "" (the proxy service's Address).
    public var registeredBindAddress: String {
        request.config["bind_address"]?.stringValue ?? ""
    }
}

/// A service registered on this agent, with where it came from.
public struct LocalService: Sendable, Hashable {
    public var definition: ServiceDefinition
    public var source: RegistrationSource

    public init(definition: ServiceDefinition, source: RegistrationSource) {
        self.definition = definition
        self.source = source
    }
}

extension ManagedProxy: ProxyIdentity {
    public var upstreamServiceNames: Set<String> {
        Set(request.upstreams.filter { $0.destinationType == "service" || $0.destinationType.isEmpty }.map(\.destinationName))
    }
}
