// The proxy `Config` map as a proxy reads it: defaults under the registration, then agent defaults.

import AgentConfig
import AgentState
import AgentStore
import ConnectdCore

public enum EffectiveProxyConfig {
    /// `proxy_defaults.config`, overlaid by the registration's `config`, then `bind_port`,
    /// `bind_address` (the agent's `bind_addr`) and `local_service_address` (`127.0.0.1:<port>`)
    /// when still missing. Keys are sorted, as Go prints a map.
    /// - Parameter withTelemetry: add Consul's `telemetry` block (only for the proxy's own token).
    public static func build(proxy: ManagedProxy, target: ServiceDefinition, configuration: AgentConfiguration,
                             withTelemetry: Bool = false) -> JSONValue {
        var merged: [String: JSONValue] = [:]
        for (key, value) in configuration.proxyDefaults.config.objectMembers ?? [] { merged[key] = value }
        for (key, value) in proxy.request.config.objectMembers ?? [] { merged[key] = value }
        if merged["bind_port"] == nil { merged["bind_port"] = .int(Int64(proxy.bindPort)) }
        if case .double(let port)? = merged["bind_port"], port == port.rounded() { merged["bind_port"] = .int(Int64(port)) }
        if merged["bind_address"] == nil { merged["bind_address"] = .string(configuration.bindAddr) }
        if merged["local_service_address"] == nil { merged["local_service_address"] = .string("127.0.0.1:\(target.port)") }
        if withTelemetry { merged["telemetry"] = telemetry(merged["telemetry"], targetID: target.id) }
        return .sortedObject(merged)
    }

    /// The agent's telemetry settings for this proxy (`metrics_prefix` `consul.proxy.<target id>`),
    /// under the user's own `telemetry` object when it has one; any other user value is kept as is.
    static func telemetry(_ user: JSONValue?, targetID: String) -> JSONValue {
        let defaults: [String: JSONValue] = ["filter_default": .bool(true), "metrics_prefix": .string("consul.proxy.\(targetID)")]
        guard let user else { return .sortedObject(defaults) }
        guard case .object(let members) = user else { return user }
        var combined = defaults
        for (key, value) in members { combined[key] = value }
        return .sortedObject(combined)
    }

    /// Splits `host:port` (brackets allowed for IPv6); nil port when there is none.
    public static func splitHostPort(_ text: String) -> (String, Int?) {
        guard let colon = text.lastIndex(of: ":") else { return (text, nil) }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, Int(text[text.index(after: colon)...]))
    }
}
