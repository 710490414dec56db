// The body of GET /v1/agent/connect/proxy/:id, as Consul 1.5.3 prints it.

import AgentConfig
import AgentState
import AgentStore
import ConnectdCore

enum ProxyConfigJSON {
    /// The body without `ContentHash` (see ``withContentHash(_:)``).
    static func body(_ proxy: ManagedProxy, target: ServiceDefinition, configuration: AgentConfiguration,
                     builtinCommand: [String], withTelemetry: Bool) -> JSONValue {
        .object([
            ("ProxyServiceID", .string(proxy.proxyServiceID)),
            ("TargetServiceID", .string(proxy.targetServiceID)),
            ("TargetServiceName", .string(proxy.targetServiceName)),
            ("ExecMode", .string(proxy.execMode(defaults: configuration.proxyDefaults).rawValue)),
            ("Command", proxy.command(defaults: configuration.proxyDefaults, builtin: builtinCommand).json),
            ("Config", EffectiveProxyConfig.build(proxy: proxy, target: target, configuration: configuration, withTelemetry: withTelemetry)),
            ("Upstreams", .array(proxy.request.upstreams.map(\.registrationJSON))),
        ])
    }

    /// Inserts `ContentHash` after `TargetServiceName`, hashing everything else in the body.
    static func withContentHash(_ value: JSONValue) -> (JSONValue, String) {
        let hash = ContentHash.of(value)
        guard case .object(var members) = value else { return (value, hash) }
        members.insert(("ContentHash", .string(hash)), at: 3)
        return (.object(members), hash)
    }
}
