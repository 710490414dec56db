// One catalog instance as stored under `catalog/<service>/<node>/<service-id>` (JSON).

import AgentState
import Foundation

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

    var key: String { FleetKeys.catalog(service: serviceName, node: node, id: serviceID) }

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

extension FleetView {
    /// The catalog in this view: every decodable record, with the catalog section's index.
    var catalog: FleetCatalog {
        FleetCatalog(instances: entries(under: "catalog/").compactMap { key, entry in
            CatalogRecord.decode(entry.value).map { $0.instance(entry) }
        }, index: index(of: "catalog"))
    }
}
