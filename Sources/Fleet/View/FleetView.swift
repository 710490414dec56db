// This host's copy of its scopes of the fleet prefix (`FleetScope`): every key in them (relative
// to the prefix) with its revisions, per scope the revision the copy is complete up to, and per
// section the revision of its last change (what `X-Consul-Index` reports: it never goes back,
// and an idle section keeps its index).

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
    /// Every change up to this revision is in `entries` (the lowest of the scopes').
    public var revision: Int64 = 0
    /// Section (`FleetKeys.section`) → revision of the last put or delete seen in it.
    public var changed: [String: Int64] = [:]
    /// Scope → every change in it up to this revision is in `entries`.
    public var scopes: [String: Int64] = [:]

    public init() {}

    enum CodingKeys: String, CodingKey { case entries, revision, changed, scopes }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        entries = try container.decode([String: ViewEntry].self, forKey: .entries)
        revision = try container.decode(Int64.self, forKey: .revision)
        changed = try container.decode([String: Int64].self, forKey: .changed)
        // A view saved before scopes existed held the whole prefix: one scope, "" (everything).
        scopes = try container.decodeIfPresent([String: Int64].self, forKey: .scopes) ?? ["": revision]
    }

    /// The index of `section` for clients: ≥ 1.
    public func index(of section: String) -> UInt64 { UInt64(max(1, changed[section] ?? 1)) }

    /// Entries whose key starts with `prefix`, by key.
    public func entries(under prefix: String) -> [(key: String, entry: ViewEntry)] {
        entries.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Applies watched events of `scope` (in order); returns the sections that changed.
    public mutating func apply(_ events: [WatchEvent], scope: String, keys: FleetKeys, upTo newRevision: Int64) -> Set<String> {
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
        progress(scope, to: newRevision)
        return touched
    }

    /// Nothing changed in `scope` up to `newRevision`.
    public mutating func progress(_ scope: String, to newRevision: Int64) {
        scopes[scope] = max(scopes[scope] ?? 0, newRevision)
        revision = scopes.values.min() ?? revision
    }

    /// Replaces what `listedScopes` hold with a listing of them taken at `listRevision`;
    /// sections that differ are marked changed at that revision. Returns them.
    public mutating func replace(with listed: [String: ViewEntry], scopes listedScopes: Set<String>, at listRevision: Int64) -> Set<String> {
        var touched: Set<String> = []
        let held = entries.keys.filter { FleetScope.covers(listedScopes, $0) }
        for key in Set(held).union(listed.keys) where entries[key] != listed[key] {
            touched.insert(FleetKeys.section(key))
            entries[key] = listed[key]
        }
        for section in touched { changed[section] = max(changed[section] ?? 0, listRevision) }
        for scope in listedScopes { scopes[scope] = listRevision }
        revision = scopes.values.min() ?? listRevision
        return touched
    }

    /// Keeps only `kept` scopes and what they hold; returns the sections that lost entries
    /// (marked changed at the view's newest revision, so their indexes move on).
    public mutating func retain(_ kept: Set<String>) -> Set<String> {
        scopes = scopes.filter { kept.contains($0.key) }
        var touched: Set<String> = []
        for key in entries.keys where !FleetScope.covers(kept, key) {
            entries.removeValue(forKey: key)
            touched.insert(FleetKeys.section(key))
        }
        let newest = max(scopes.values.max() ?? 0, changed.values.max() ?? 0)
        for section in touched { changed[section] = max(changed[section] ?? 0, newest) }
        revision = scopes.values.min() ?? revision
        return touched
    }
}
