// The catalog and health shapes of Consul 1.5.3 for instances on any host of a fleet, from the
// fleet catalog (each instance carries its node, advertise address and check).

import AgentState
import ConnectdCore

enum FleetCatalogJSON {
    static func nodeFields(_ instance: CatalogInstance) -> [(String, JSONValue)] {
        [
            ("ID", .string(instance.nodeID)),
            ("Node", .string(instance.node)),
            ("Address", .string(instance.address)),
            ("Datacenter", .string(instance.datacenter)),
            ("TaggedAddresses", .object([("lan", .string(instance.address)), ("wan", .string(instance.address))])),
        ]
    }

    static func node(_ instance: CatalogInstance) -> JSONValue {
        .object(nodeFields(instance) + [
            ("Meta", .object([("consul-network-segment", .string(""))])),
            ("CreateIndex", .int(Int64(instance.createIndex))),
            ("ModifyIndex", .int(Int64(instance.modifyIndex))),
        ])
    }

    /// As Consul's health answer carries a managed proxy's: the destination's name only.
    static func proxyFields(_ instance: CatalogInstance) -> JSONValue {
        .object([("DestinationServiceName", .string(instance.destinationName ?? ""))])
    }

    static func service(_ instance: CatalogInstance) -> JSONValue {
        .object([
            ("Kind", .string(instance.kind)),
            ("ID", .string(instance.serviceID)),
            ("Service", .string(instance.serviceName)),
            ("Tags", .array(instance.tags.map { .string($0) })),
            ("Meta", .null),
            ("Port", .int(Int64(instance.port))),
            ("Address", .string("")),
            ("Weights", .object([("Passing", .int(1)), ("Warning", .int(1))])),
            ("EnableTagOverride", .bool(false)),
            ("ProxyDestination", .string(instance.destinationName ?? "")),
            ("Proxy", proxyFields(instance)),
            ("Connect", .object([])),
            ("CreateIndex", .int(Int64(instance.createIndex))),
            ("ModifyIndex", .int(Int64(instance.modifyIndex))),
        ])
    }

    static func check(_ instance: CatalogInstance) -> JSONValue {
        .object([
            ("Node", .string(instance.node)),
            ("CheckID", .string("service:\(instance.serviceID)")),
            ("Name", .string("Connect Proxy Listening")),
            ("Status", .string(instance.passing ? "passing" : "critical")),
            ("Notes", .string("")),
            ("Output", .string(instance.checkOutput)),
            ("ServiceID", .string(instance.serviceID)),
            ("ServiceName", .string(instance.serviceName)),
            ("ServiceTags", .array([])),
            ("Definition", .object([])),
            ("CreateIndex", .int(Int64(instance.createIndex))),
            ("ModifyIndex", .int(Int64(instance.modifyIndex))),
        ])
    }

    /// `/v1/health/connect/:service` entries.
    static func health(_ instance: CatalogInstance) -> JSONValue {
        .object([("Node", node(instance)), ("Service", service(instance)), ("Checks", .array([check(instance)]))])
    }

    /// `/v1/catalog/connect/:service` entries.
    static func catalogService(_ instance: CatalogInstance) -> JSONValue {
        .object(nodeFields(instance) + [
            ("NodeMeta", .object([("consul-network-segment", .string(""))])),
            ("ServiceKind", .string(instance.kind)),
            ("ServiceID", .string(instance.serviceID)),
            ("ServiceName", .string(instance.serviceName)),
            ("ServiceTags", .array(instance.tags.map { .string($0) })),
            ("ServiceAddress", .string("")),
            ("ServiceMeta", .object([])),
            ("ServicePort", .int(Int64(instance.port))),
            ("ServiceEnableTagOverride", .bool(false)),
            ("ServiceProxyDestination", .string(instance.destinationName ?? "")),
            ("ServiceProxy", proxyFields(instance)),
            ("ServiceConnect", .object([("Native", .bool(false)), ("Proxy", .null)])),
            ("CreateIndex", .int(Int64(instance.createIndex))),
            ("ModifyIndex", .int(Int64(instance.modifyIndex))),
        ])
    }
}
