// `connectd fleet remove-host NODE`: retires a host from the fleet. One transaction (split at
// 100 operations) writes `removed/<node>` and deletes the host's `hosts/` key and catalog
// entries; from then on the root holder refuses its CSR (its intermediate is not renewed), and
// the host itself, if it still runs, publishes nothing and says why.

import ConnectdCore
import EtcdClient
import Foundation

public struct FleetRemovalError: Error, CustomStringConvertible {
    public var description: String
}

extension FleetRuntime {
    /// Removes `node`; returns how many of its catalog entries were deleted.
    public func removeHost(_ node: String, by remover: String) async throws -> Int {
        guard !node.isEmpty else { throw FleetRemovalError(description: "a node name is needed") }
        let everyone: FleetView
        do throws(EtcdError) {
            everyone = try await listed([], keysOnly: ["catalog/"])
        } catch {
            throw FleetRemovalError(description: "cannot remove host \(node): \(error)")
        }
        let catalog = everyone.entries.keys.filter { FleetKeys.catalogNode($0) == node }.sorted()
        let record = JSONValue.object([("Node", .string(node)), ("RemovedAt", .string(RFC3339.format(Date()))), ("RemovedBy", .string(remover))])
        var operations: [RequestOp] = [
            .put(PutRequest(key: keys.full(FleetKeys.removed(node)), value: Data(record.encoded().utf8))),
            .delete(DeleteRangeRequest(key: keys.full(FleetKeys.host(node)))),
            .delete(DeleteRangeRequest(key: keys.full(FleetKeys.csr(node)))),
        ]
        operations += catalog.map { .delete(DeleteRangeRequest(key: keys.full($0))) }
        var start = 0
        while start < operations.count {
            let chunk = Array(operations[start..<min(start + CatalogPublisher.batch, operations.count)])
            do throws(EtcdError) {
                _ = try await client.txn(TxnRequest(compare: [], success: chunk))
            } catch {
                throw FleetRemovalError(description: "cannot remove host \(node): \(error)")
            }
            start += CatalogPublisher.batch
        }
        return catalog.count
    }
}

extension FleetView {
    /// `removed/<node>`'s record, when `node` was removed from the fleet.
    func removal(of node: String) -> JSONValue? {
        entries[FleetKeys.removed(node)].flatMap { try? JSONParser.parse(Array($0.value)) }
    }
}
