// What of the fleet prefix an agent keeps: scopes, each one key or one `/`-terminated prefix
// (relative to the root). Every agent keeps the roots, the intentions and its own host's keys;
// a root holder all of `ca/`, `removed/` and `hosts/` (it signs for every host and
// records when a host was last seen); and any agent the
// catalog prefix of each service its proxies and clients use. So its cost grows with what it
// uses, not with the fleet (a root holder's also with the number of hosts).

import EtcdClient
import Foundation

public enum FleetScope {
    /// Whether `scope` is a prefix (`""`, in a view saved before scopes, is the whole root).
    public static func isPrefix(_ scope: String) -> Bool { scope.isEmpty || scope.hasSuffix("/") }

    /// Whether `scope` holds `key`.
    public static func contains(_ scope: String, _ key: String) -> Bool {
        isPrefix(scope) ? key.hasPrefix(scope) : key == scope
    }

    /// Whether one of `scopes` holds `key`.
    public static func covers(_ scopes: some Collection<String>, _ key: String) -> Bool {
        scopes.contains { contains($0, key) }
    }

    /// `catalog/<service>/`: the service's instances and the proxies that front it.
    public static func catalog(_ service: String) -> String { "catalog/" + FleetKeys.component(service) + "/" }

    /// The service a catalog scope is for, or nil for another scope.
    public static func service(of scope: String) -> String? {
        guard scope.hasPrefix("catalog/"), scope.hasSuffix("/") else { return nil }
        let name = scope.dropFirst("catalog/".count).dropLast()
        guard !name.isEmpty, !name.contains("/") else { return nil }
        return String(name).removingPercentEncoding
    }

    /// What every agent keeps whatever it serves.
    public static func base(node: String, rootHolder: Bool) -> Set<String> {
        var scopes: Set<String> = ["intentions/", FleetKeys.host(node)]
        if rootHolder {
            scopes.formUnion(["ca/", "removed/", "hosts/"])
        } else {
            scopes.formUnion([FleetKeys.roots, FleetKeys.csr(node), FleetKeys.intermediate(node), FleetKeys.ack(node),
                              FleetKeys.removed(node)])
        }
        return scopes
    }

    /// `scopes` without those another of them already holds.
    public static func minimal(_ scopes: Set<String>) -> Set<String> {
        scopes.filter { scope in !scopes.contains { $0 != scope && isPrefix($0) && scope.hasPrefix($0) } }
    }

    /// The key range of `scope` under `keys`' root: (key, range end; nil for one key).
    public static func range(_ scope: String, _ keys: FleetKeys) -> (key: Data, end: Data?) {
        let key = keys.full(scope)
        return (key, isPrefix(scope) ? KeyRange.end(ofPrefix: key) : nil)
    }

    /// A watch of `scope` from `revision` on.
    public static func watch(_ scope: String, _ keys: FleetKeys, from revision: Int64) -> WatchCreateRequest {
        let (key, end) = range(scope, keys)
        return end == nil ? .key(key, from: revision) : .prefix(key, from: revision)
    }
}
