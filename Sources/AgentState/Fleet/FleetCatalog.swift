// The fleet's catalog as this agent last saw it in etcd: every host's services and managed
// proxies, with the etcd revision of the last change (the catalog endpoints' `X-Consul-Index`).

/// One registered instance on some host of the fleet.
public struct CatalogInstance: Sendable, Equatable {
    public var node: String
    public var nodeID: String
    /// The host's advertise address: where other hosts reach its proxies.
    public var address: String
    public var datacenter: String
    public var serviceID: String
    public var serviceName: String
    /// `""` for a service, `connect-proxy` for a managed proxy.
    public var kind: String
    public var port: Int
    public var tags: [String]
    /// For a proxy: the service it fronts.
    public var destinationName: String?
    public var destinationServiceID: String?
    /// The proxy listener check (services have no check).
    public var passing: Bool
    public var checkOutput: String
    /// The etcd revisions that created and last changed this record.
    public var createIndex: UInt64
    public var modifyIndex: UInt64

    public init(node: String, nodeID: String, address: String, datacenter: String, serviceID: String, serviceName: String,
                kind: String, port: Int, tags: [String] = [], destinationName: String? = nil, destinationServiceID: String? = nil,
                passing: Bool = true, checkOutput: String = "", createIndex: UInt64 = 0, modifyIndex: UInt64 = 0) {
        self.node = node
        self.nodeID = nodeID
        self.address = address
        self.datacenter = datacenter
        self.serviceID = serviceID
        self.serviceName = serviceName
        self.kind = kind
        self.port = port
        self.tags = tags
        self.destinationName = destinationName
        self.destinationServiceID = destinationServiceID
        self.passing = passing
        self.checkOutput = checkOutput
        self.createIndex = createIndex
        self.modifyIndex = modifyIndex
    }

    /// Equal as published (the indexes are etcd's, not part of what a host says).
    public func samePublished(as other: CatalogInstance) -> Bool {
        var a = self, b = other
        (a.createIndex, a.modifyIndex, b.createIndex, b.modifyIndex) = (0, 0, 0, 0)
        return a == b
    }
}

public struct FleetCatalog: Sendable, Equatable {
    /// Every instance, by (service, node, service ID).
    public let instances: [CatalogInstance]
    /// The etcd revision of the last change seen (≥ 1, never backwards).
    public let index: UInt64
    /// Proxies by the service they front, each list sorted by (node, service ID): a health query
    /// reads one list instead of filtering the fleet.
    private let proxiesByDestination: [String: [CatalogInstance]]

    public init(instances: [CatalogInstance] = [], index: UInt64 = 1) {
        // Sorted, so two catalogs of the same instances compare equal whatever order the view had.
        self.instances = instances.sorted { ($0.serviceName, $0.node, $0.serviceID) < ($1.serviceName, $1.node, $1.serviceID) }
        self.index = max(index, 1)
        var grouped: [String: [CatalogInstance]] = [:]
        for instance in instances where instance.kind == "connect-proxy" {
            grouped[instance.destinationName ?? "", default: []].append(instance)
        }
        proxiesByDestination = grouped.mapValues { $0.sorted { ($0.node, $0.serviceID) < ($1.node, $1.serviceID) } }
    }

    /// The proxies fronting `service`, on every host.
    public func proxies(for service: String) -> [CatalogInstance] { proxiesByDestination[service] ?? [] }

    /// Equal with the same index and the same instances. (An agent keeps only the services it
    /// uses, so this is a pass over a few instances; a listing can bring other content at the same
    /// index, e.g. a service dropped and listed again while etcd stood still.)
    public static func == (lhs: FleetCatalog, rhs: FleetCatalog) -> Bool {
        lhs.index == rhs.index && lhs.instances == rhs.instances
    }
}
