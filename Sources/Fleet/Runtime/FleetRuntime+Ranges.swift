// Reads of the fleet beyond this agent's scopes (`connectd fleet status`, `remove-host`,
// `/v1/catalog/services`): range reads at one revision, paged, never kept or watched.

import EtcdClient
import Foundation

extension FleetRuntime {
    /// A view of `prefixes` (with values) and `keysOnly` (keys and revisions only), all at
    /// one revision.
    func listed(_ prefixes: [String], keysOnly: [String] = []) async throws(EtcdError) -> FleetView {
        var view = FleetView()
        var revision: Int64?
        for (prefix, withValues) in prefixes.map({ ($0, true) }) + keysOnly.map({ ($0, false) }) {
            var start = keys.full(prefix)
            let end = KeyRange.end(ofPrefix: start)
            while true {
                let page = try await client.range(RangeRequest(key: start, rangeEnd: end, limit: withValues ? 500 : 5000, revision: revision,
                                                               keysOnly: withValues ? nil : true))
                revision = revision ?? page.header?.currentRevision
                for kv in page.values {
                    guard let key = keys.relative(kv.key) else { continue }
                    view.entries[key] = ViewEntry(value: kv.value ?? Data(), createRevision: kv.createRevision?.value ?? 0,
                                                  modRevision: kv.modRevision?.value ?? 0, lease: kv.lease?.value ?? 0)
                }
                guard page.more == true, let last = page.values.last?.key else { break }
                start = last + Data([0])
            }
            view.scopes[prefix] = revision ?? 0
        }
        view.revision = revision ?? 0
        return view
    }

    /// Every service in the fleet with its tags (`/v1/catalog/services`), and the revision read.
    public func catalogServices() async throws(EtcdError) -> (services: [String: Set<String>], revision: Int64) {
        let catalog = try await listed(["catalog/"])
        var services: [String: Set<String>] = [:]
        for (_, entry) in catalog.entries {
            guard let record = CatalogRecord.decode(entry.value) else { continue }
            services[record.serviceName, default: []].formUnion(record.tags)
        }
        return (services, catalog.revision)
    }
}
