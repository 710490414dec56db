// This host's copy of the fleet prefix: every key (relative to the prefix) with its revisions,
// the revision the copy is complete up to, and per section the revision of its last change
// (what `X-Consul-Index` reports: it never goes back, and an idle section keeps its index).

import EtcdClient
import Foundation

public struct ViewEntry: Codable, Sendable, Equatable {
    public var value: Data
    public var createRevision: Int64
    public var modRevision: Int64
    public var lease: Int64
}

public struct FleetView: Codable, Sendable, Equatable {
    public var entries: [String: ViewEntry] = [:]
    /// Every change up to this revision is in `entries`.
    public var revision: Int64 = 0
    /// Section (`FleetKeys.section`) → revision of the last put or delete seen in it.
    public var changed: [String: Int64] = [:]

    public init() {}

    /// The index of `section` for clients: ≥ 1.
    public func index(of section: String) -> UInt64 { UInt64(max(1, changed[section] ?? 1)) }

    /// Entries whose key starts with `prefix`, by key.
    public func entries(under prefix: String) -> [(key: String, entry: ViewEntry)] {
        entries.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Applies watched events (in order); returns the sections that changed.
    public mutating func apply(_ events: [WatchEvent], keys: FleetKeys, upTo newRevision: Int64) -> Set<String> {
        var touched: Set<String> = []
        for event in events {
            guard let kv = event.kv, let key = keys.relative(kv.key) else { continue }
            let revision = kv.modRevision?.value ?? newRevision
            let section = FleetKeys.section(key)
            switch event.kind {
            case .put:
                entries[key] = ViewEntry(value: kv.value ?? Data(), createRevision: kv.createRevision?.value ?? revision,
                                         modRevision: revision, lease: kv.lease?.value ?? 0)
            case .delete:
                entries.removeValue(forKey: key)
            }
            changed[section] = max(changed[section] ?? 0, revision)
            touched.insert(section)
        }
        revision = max(revision, newRevision)
        return touched
    }

    /// Replaces everything with a listing taken at `listRevision`; sections that differ are
    /// marked changed at that revision. Returns them.
    public mutating func replace(with listed: [String: ViewEntry], at listRevision: Int64) -> Set<String> {
        var touched: Set<String> = []
        for key in Set(entries.keys).union(listed.keys) where entries[key] != listed[key] {
            touched.insert(FleetKeys.section(key))
        }
        entries = listed
        for section in touched { changed[section] = max(changed[section] ?? 0, listRevision) }
        revision = max(revision, listRevision)
        return touched
    }
}
