// api.AgentService as Consul 1.5.3 prints it, for regular services and managed-proxy services.

import AgentConfig
import AgentState
import AgentStore
import ConnectdCore

public enum AgentServiceJSON {
    /// Which endpoint renders: the list converts nil tags/meta to `[]`/`{}` and default weights;
    /// the single-service endpoint prints Consul's raw values and adds `ContentHash`.
    public enum Style { case list, single }

    /// A regular service, with `Connect` when it is native or has a managed proxy.
    public static func service(_ service: LocalService, proxy: ManagedProxy?, configuration: AgentConfiguration,
                               builtinCommand: [String], style: Style) -> JSONValue {
        let definition = service.definition
        var members: [(String, JSONValue)] = [
            ("ID", .string(definition.id)),
            ("Service", .string(definition.name)),
            ("Tags", style == .list ? (definition.tags ?? []).json : definition.tags.jsonOrNull),
            ("Meta", meta(definition.meta, style: style)),
            ("Port", .int(Int64(definition.port))),
            ("Address", .string(definition.address)),
            ("Weights", weights(definition.weights)),
            ("EnableTagOverride", .bool(definition.enableTagOverride)),
        ]
        if let proxy, proxy.request.sidecar == nil {
            let proxyJSON: JSONValue = .object([
                ("ExecMode", .string(proxy.execMode(defaults: configuration.proxyDefaults).rawValue)),
                ("Command", proxy.command(defaults: configuration.proxyDefaults, builtin: builtinCommand).json),
                ("Config", proxy.request.config),
                ("Upstreams", .array(proxy.request.upstreams.map(\.registrationJSON))),
            ])
            members.append(("Connect", .object([("Proxy", proxyJSON)])))
        } else if definition.connect?.native == true {
            members.append(("Connect", .object([("Native", .bool(true))])))
        }
        return .object(members)
    }

    /// The `connect-proxy` service of a managed proxy.
    public static func proxyService(_ proxy: ManagedProxy, target: ServiceDefinition, configuration: AgentConfiguration,
                                    style: Style, withTelemetry: Bool = false) -> JSONValue {
        let config = EffectiveProxyConfig.build(proxy: proxy, target: target, configuration: configuration, withTelemetry: withTelemetry)
        let (localHost, localPort) = EffectiveProxyConfig.splitHostPort(config["local_service_address"]?.stringValue ?? "")
        let upstreams = JSONValue.array(proxy.request.upstreams.map(\.registrationJSON))
        var proxyMembers: [(String, JSONValue)]
        var address = proxy.registeredBindAddress
        switch style {
        case .single:
            // As `/v1/agent/service/:id` answers (golden 70): the whole proxy config.
            proxyMembers = [
                ("DestinationServiceName", .string(proxy.targetServiceName)),
                ("DestinationServiceID", .string(proxy.targetServiceID)),
                ("LocalServiceAddress", .string(localHost)),
                ("LocalServicePort", .int(Int64(localPort ?? target.port))),
                ("Config", config),
                ("Upstreams", upstreams),
            ]
            address = config["bind_address"]?.stringValue ?? address
        case .list:
            // Consul's managed-proxy service as its local state holds it: no destination ID or
            // local address, upstreams only when there are some (Go's omitempty).
            proxyMembers = [
                ("DestinationServiceName", .string(proxy.targetServiceName)),
                ("LocalServicePort", .int(Int64(localPort ?? target.port))),
            ]
            if !proxy.request.upstreams.isEmpty { proxyMembers.append(("Upstreams", upstreams)) }
        }
        var members: [(String, JSONValue)] = [
            ("Kind", .string("connect-proxy")),
            ("ID", .string(proxy.proxyServiceID)),
            ("Service", .string(proxy.proxyServiceName)),
            ("Tags", style == .list ? .array([]) : .null),
            ("Meta", style == .list ? .object([]) : .null),
            ("Port", .int(Int64(proxy.bindPort))),
            ("Address", .string(address)),
            ("Weights", style == .list ? weights(ServiceWeights()) : weights(ServiceWeights(passing: 0, warning: 0))),
            ("EnableTagOverride", .bool(false)),
        ]
        // The deprecated twin of `Proxy.DestinationServiceName`, which Consul's list still sends.
        if style == .list { members.append(("ProxyDestination", .string(proxy.targetServiceName))) }
        members.append(("Proxy", .object(proxyMembers)))
        return .object(members)
    }

    /// Adds `ContentHash` after `EnableTagOverride`, hashing the body without it.
    public static func withContentHash(_ value: JSONValue) -> (JSONValue, String) {
        let hash = ContentHash.of(value)
        guard case .object(var members) = value else { return (value, hash) }
        let position = (members.firstIndex { $0.0 == "EnableTagOverride" }).map { $0 + 1 } ?? members.endIndex
        members.insert(("ContentHash", .string(hash)), at: position)
        return (.object(members), hash)
    }

    static func meta(_ meta: [String: String]?, style: Style) -> JSONValue {
        guard let meta else { return style == .list ? .object([]) : .null }
        return .sortedObject(meta.mapValues { .string($0) })
    }

    static func weights(_ weights: ServiceWeights) -> JSONValue {
        .object([("Passing", .int(Int64(weights.passing))), ("Warning", .int(Int64(weights.warning)))])
    }
}
