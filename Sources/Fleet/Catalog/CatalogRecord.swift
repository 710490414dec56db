// One catalog instance as stored under `catalog/<service>/<node>/<service-id>` (JSON). A proxy
// is stored under the service it fronts, so one prefix holds what a query for that service needs.

import AgentState
import Foundation
import Synchronization

struct CatalogRecord: Codable, Equatable {
    var node: String
    var nodeID: String
    var address: String
    var datacenter: String
    var serviceID: String
    var serviceName: String
    var kind: String
    var port: Int
    var tags: [String]
    var destinationName: String?
    var destinationServiceID: String?
    var passing: Bool
    var output: String

    enum CodingKeys: String, CodingKey {
        case node = "Node", nodeID = "NodeID", address = "Address", datacenter = "Datacenter", serviceID = "ServiceID"
        case serviceName = "ServiceName", kind = "Kind", port = "Port", tags = "Tags", destinationName = "DestinationName"
        case destinationServiceID = "DestinationServiceID", passing = "Passing", output = "Output"
    }

    init(_ instance: CatalogInstance) {
        node = instance.node
        nodeID = instance.nodeID
        address = instance.address
        datacenter = instance.datacenter
        serviceID = instance.serviceID
        serviceName = instance.serviceName
        kind = instance.kind
        port = instance.port
        tags = instance.tags
        destinationName = instance.destinationName
        destinationServiceID = instance.destinationServiceID
        passing = instance.passing
        output = instance.checkOutput
    }

    var key: String {
        FleetKeys.catalog(service: kind == "connect-proxy" ? destinationName ?? serviceName : serviceName, node: node, id: serviceID)
    }

    func instance(_ entry: ViewEntry) -> CatalogInstance {
        CatalogInstance(node: node, nodeID: nodeID, address: address, datacenter: datacenter, serviceID: serviceID,
                        serviceName: serviceName, kind: kind, port: port, tags: tags, destinationName: destinationName,
                        destinationServiceID: destinationServiceID, passing: passing, checkOutput: output,
                        createIndex: UInt64(max(0, entry.createRevision)), modifyIndex: UInt64(max(0, entry.modRevision)))
    }

    var encoded: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)) ?? Data()
    }

    static func decode(_ data: Data) -> CatalogRecord? { try? JSONDecoder().decode(CatalogRecord.self, from: data) }
}

/// Decoded catalog instances by key, kept across changes of the view: a change decodes only
/// the records whose revision moved, not the whole catalog again.
final class CatalogDecoder: Sendable {
    private let decoded = Mutex<[String: (revision: Int64, instance: CatalogInstance?)]>([:])

    /// The catalog in `view`: every decodable record, with the catalog section's index.
    func catalog(_ view: FleetView) -> FleetCatalog {
        decoded.withLock { cache in
            var next: [String: (revision: Int64, instance: CatalogInstance?)] = [:]
            next.reserveCapacity(cache.count)
            for (key, entry) in view.entries where key.hasPrefix("catalog/") {
                if let known = cache[key], known.revision == entry.modRevision {
                    next[key] = known
                } else {
                    next[key] = (entry.modRevision, CatalogRecord.decode(entry.value).map { $0.instance(entry) })
                }
            }
            cache = next
            return FleetCatalog(instances: next.values.compactMap(\.instance), index: view.index(of: "catalog"))
        }
    }
}
