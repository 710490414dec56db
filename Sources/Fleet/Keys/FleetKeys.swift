// Fleet: many hosts, one mesh, on etcd. This module owns what a host keeps in and reads from
// etcd: the key layout, the local view of the prefix (listed, then watched, saved for fail-static),
// the catalog this host publishes under its lease, shared intentions, and the per-host
// intermediate CA (with the root holder that signs them). AgentState stays the one owner of
// what the agent serves; this module feeds it.

import Foundation

/// Where everything lives under `<key_prefix>v1/` (`v1` is the layout's schema version).
public struct FleetKeys: Sendable, Equatable {
    /// `connectd/v1/`.
    public let root: String

    public init(keyPrefix: String) { root = keyPrefix + "v1/" }

    public var rootBytes: Data { Data(root.utf8) }

    public func full(_ relative: String) -> Data { Data((root + relative).utf8) }

    /// The key under the root, or nil for a key outside it.
    public func relative(_ key: Data) -> String? {
        guard let text = String(data: key, encoding: .utf8), text.hasPrefix(root) else { return nil }
        return String(text.dropFirst(root.count))
    }

    public static let roots = "ca/roots"
    public static func csr(_ node: String) -> String { "ca/csr/" + component(node) }
    public static func intermediate(_ node: String) -> String { "ca/intermediates/" + component(node) }
    public static func ack(_ node: String) -> String { "ca/acks/" + component(node) }
    public static func intention(_ id: String) -> String { "intentions/" + component(id) }
    public static func intentionPair(source: String, destination: String) -> String {
        "intention-pairs/" + component(source) + "/" + component(destination)
    }
    public static func catalog(service: String, node: String, id: String) -> String {
        "catalog/" + component(service) + "/" + component(node) + "/" + component(id)
    }
    public static func host(_ node: String) -> String { "hosts/" + component(node) }
    /// Written by a root holder when `hosts/<node>` goes: when the host was last seen.
    public static func seen(_ node: String) -> String { "seen/" + component(node) }
    /// Written by `connectd fleet remove-host`: the host gets no intermediate and publishes nothing.
    public static func removed(_ node: String) -> String { "removed/" + component(node) }

    /// The node a `catalog/<service>/<node>/<id>` key belongs to.
    public static func catalogNode(_ relative: String) -> String? {
        let parts = relative.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "catalog" else { return nil }
        return String(parts[2]).removingPercentEncoding
    }

    /// The section a key belongs to (its first path component): `ca`, `intentions`, `catalog`…
    public static func section(_ relative: String) -> String {
        String(relative.prefix { $0 != "/" })
    }

    /// A name as one path component: `/` and `%` percent-encoded, so any name is one level.
    public static func component(_ name: String) -> String {
        var result = ""
        for character in name {
            switch character {
            case "/": result += "%2F"
            case "%": result += "%25"
            default: result.append(character)
            }
        }
        return result
    }
}
