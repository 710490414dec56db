// How a CAState is kept in the store: `ca/roots` (roots with their keys), `ca/config`, and the
// `agent/ca` marker that says a CA exists. Indexes of 0 mean "the write that stores this".

import AgentStore
import ConnectdCore

extension CAState {
    /// The puts that turn `previous` (nil: no CA yet) into this state.
    public func operations(from previous: CAState?) -> [StoreOperation] {
        var operations: [StoreOperation] = []
        if previous == nil { operations += markerOperations }
        if previous?.roots != roots {
            operations.append(.put(key: CAPolicy.rootsKey, value: .object([
                ("ClusterID", .string(clusterID)), ("Roots", .array(roots.map(\.storedJSON))),
            ])))
        }
        if previous?.config != config {
            operations.append(.put(key: CAPolicy.configKey, value: config.storedJSON))
        }
        return operations
    }

    /// The `agent/ca` marker: this data_dir has a CA, of this cluster.
    public var markerOperations: [StoreOperation] {
        [.put(key: CAPolicy.markerKey, value: .object([("ClusterID", .string(clusterID)), ("TrustDomain", .string(trustDomain))]))]
    }

    /// This state as committed at `revision`: every index left at 0 becomes `revision`, and the
    /// roots index moves when the roots differ from `previous`.
    public func stamped(revision: UInt64, previous: CAState?) -> CAState {
        var next = self
        for index in next.roots.indices {
            if next.roots[index].createIndex == 0 { next.roots[index].createIndex = revision }
            if next.roots[index].modifyIndex == 0 { next.roots[index].modifyIndex = revision }
        }
        if next.config.createIndex == 0 { next.config.createIndex = revision }
        if next.config.modifyIndex == 0 { next.config.modifyIndex = revision }
        if previous?.roots != roots || next.rootsIndex == 0 { next.rootsIndex = revision }
        return next
    }
}
