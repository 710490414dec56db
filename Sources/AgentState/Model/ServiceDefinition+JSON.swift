// The registration-body JSON of a service definition, used for durable records.

import AgentConfig
import AgentStore
import ConnectdCore

extension ServiceDefinition {
    /// The definition as a PascalCase registration body; ``AgentConfig/ServiceDefinitionDecoder``
    /// reads it back with `.api` matching.
    public var registrationJSON: JSONValue {
        var members: [(String, JSONValue)] = [
            ("ID", .string(id)), ("Name", .string(name)),
        ]
        if let tags { members.append(("Tags", tags.json)) }
        if let meta { members.append(("Meta", .sortedObject(meta.mapValues { .string($0) }))) }
        members += [
            ("Address", .string(address)), ("Port", .int(Int64(port))),
            ("EnableTagOverride", .bool(enableTagOverride)),
            ("Weights", .object([("Passing", .int(Int64(weights.passing))), ("Warning", .int(Int64(weights.warning)))])),
            ("Token", .string(token)),
        ]
        if let connect {
            var connectMembers: [(String, JSONValue)] = [("Native", .bool(connect.native))]
            if let proxy = connect.proxy {
                if let sidecar = proxy.sidecar {
                    var members: [(String, JSONValue)] = []
                    if let id = sidecar.id { members.append(("ID", .string(id))) }
                    if let name = sidecar.name { members.append(("Name", .string(name))) }
                    if let port = sidecar.port { members.append(("Port", .int(Int64(port)))) }
                    members.append(("Managed", .bool(sidecar.managed)))
                    members.append(("Proxy", proxy.registrationJSON))
                    connectMembers.append(("SidecarService", .object(members)))
                } else {
                    connectMembers.append(("Proxy", proxy.registrationJSON))
                }
            }
            members.append(("Connect", .object(connectMembers)))
        }
        if !checks.isEmpty { members.append(("Checks", .array(checks.map(\.registrationJSON)))) }
        return .object(members)
    }
}

extension ManagedProxyRequest {
    public var registrationJSON: JSONValue {
        var members: [(String, JSONValue)] = [
            ("ExecMode", .string(execMode?.rawValue ?? "")),
            ("Command", command.json),
            ("Config", config),
            ("Upstreams", .array(upstreams.map(\.registrationJSON))),
        ]
        // connectd's supervision keys, spelled as in config files (the decoder matches any case).
        if let supervision, case .object(let settings) = supervision.json { members += settings }
        return .object(members)
    }
}

extension Upstream {
    /// Consul's upstream JSON: empty fields omitted except `DestinationName`.
    public var registrationJSON: JSONValue {
        var members: [(String, JSONValue)] = []
        if !destinationType.isEmpty { members.append(("DestinationType", .string(destinationType))) }
        if !destinationNamespace.isEmpty { members.append(("DestinationNamespace", .string(destinationNamespace))) }
        members.append(("DestinationName", .string(destinationName)))
        if !datacenter.isEmpty { members.append(("Datacenter", .string(datacenter))) }
        if !localBindAddress.isEmpty { members.append(("LocalBindAddress", .string(localBindAddress))) }
        if localBindPort != 0 { members.append(("LocalBindPort", .int(Int64(localBindPort)))) }
        if let config { members.append(("Config", config)) }
        return .object(members)
    }
}
