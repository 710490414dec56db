// What `GET /v1/agent/fleet` and `connectd fleet status` show: the fleet's hosts (read from etcd),
// each etcd member's health, and this agent's view (scopes, revision, lag, phase, checksum).

import AgentState
import CertificateAuthority
import ConnectdCore
import EtcdClient
import Foundation

extension FleetRuntime {
    /// The fleet as this agent sees it, asking each etcd member for its status (bounded by the
    /// client's per-attempt deadline).
    public func status(node: String) async -> JSONValue {
        let view = await feed.view
        let phase = await feed.phase
        let events = await feed.eventsReceived
        // The hosts from etcd (this agent keeps only its own scopes), or from the view when
        // etcd cannot be read.
        let fleet: FleetView
        let source: String
        do throws(EtcdError) {
            fleet = try await listed(["hosts/", "ca/intermediates/", "ca/acks/", "removed/", "seen/"], keysOnly: ["catalog/"])
            source = "etcd"
        } catch {
            fleet = view
            source = "this agent's view (etcd unreachable: \(error))"
        }
        let lease = await lease.state
        let members = await client.memberStatuses()
        let latest = members.compactMap { try? $0.status.get().header?.revision?.value }.max()
        return .object([
            ("Mode", .string("fleet")),
            ("Node", .string(node)),
            ("KeyPrefix", .string(keys.root)),
            ("View", .object([
                ("Phase", .string(Self.describe(phase))),
                ("Revision", .int(view.revision)),
                ("Lag", latest.map { .int(max(0, $0 - view.revision)) } ?? .null),
                ("Keys", .int(Int64(view.entries.count))),
                ("Checksum", .string(view.checksum)),
                ("Scopes", .array(view.scopes.sorted { $0.key < $1.key }.map {
                    .object([("Scope", .string($0.key)), ("Revision", .int($0.value))])
                })),
                ("EventsReceived", .int(Int64(events))),
            ])),
            ("Lease", .string(Self.describe(lease))),
            ("Removed", .bool(view.removal(of: node) != nil)),
            ("HostsFrom", .string(source)),
            ("Hosts", .array(Self.hosts(fleet))),
            ("Etcd", .array(members.map { endpoint, result in
                switch result {
                case .success(let status):
                    return .object([("Endpoint", .string(endpoint)), ("Healthy", .bool(status.hasLeader && (status.errors ?? []).isEmpty)),
                                    ("Leader", .bool(status.isLeader)), ("Revision", .int(status.header?.revision?.value ?? 0)),
                                    ("Version", .string(status.version ?? "")), ("Errors", .array((status.errors ?? []).map { .string($0) }))])
                case .failure(let error):
                    return .object([("Endpoint", .string(endpoint)), ("Healthy", .bool(false)), ("Leader", .bool(false)),
                                    ("Revision", .null), ("Version", .null), ("Errors", .array([.string("\(error)")]))])
                }
            })),
        ])
    }

    /// What the metrics read at a scrape (no call to etcd).
    public struct Reading: Sendable {
        /// `starting`, `held`, `unconfirmed` or `stopped`.
        public var lease: String
        /// The highest etcd revision any answer carried, less the view's revision (0 at best).
        public var viewLag: Int64
        /// Whether the view's watch is current.
        public var watching: Bool
    }

    public func reading() async -> Reading {
        let revision = await feed.view.revision
        let watching = if case .watching = await feed.phase { true } else { false }
        let lease: String = switch await lease.state {
        case .starting: "starting"
        case .held: "held"
        case .unconfirmed: "unconfirmed"
        case .stopped: "stopped"
        }
        return Reading(lease: lease, viewLag: max(0, client.latestRevision - revision), watching: watching)
    }

    /// One line for `STATUS=` and `/v1/agent/self`.
    public func summary(node: String) async -> String {
        let view = await feed.view
        let phase = await feed.phase
        let intentions = view.entries(under: "intentions/").count
        let services = view.scopes.keys.compactMap(FleetScope.service(of:)).count
        let removed = view.removal(of: node) != nil ? "THIS HOST WAS REMOVED from the fleet; " : ""
        return "fleet: \(removed)\(intentions) intention(s), \(services) service(s) watched, view at revision \(view.revision) (\(Self.describe(phase)))"
    }

    /// Every host the fleet knows: live ones (a `hosts/` key under a kept-alive lease: seen
    /// now) and gone ones (an intermediate, a last-seen record or a removal, and no `hosts/` key).
    static func hosts(_ view: FleetView, now: Date = Date()) -> [JSONValue] {
        var services: [String: Int] = [:]
        for key in view.entries.keys where key.hasPrefix("catalog/") {
            if let node = FleetKeys.catalogNode(key) { services[node, default: 0] += 1 }
        }
        func record(_ key: String) -> JSONValue? { view.entries[key].flatMap { try? JSONParser.parse(Array($0.value)) } }
        func host(_ node: String, address: JSONValue?, entry: ViewEntry?) -> JSONValue {
            let intermediate = view.entries[FleetKeys.intermediate(node)].flatMap { IntermediateRecord.decode($0.value) }
            let seen = record(FleetKeys.seen(node))
            var fields: [(String, JSONValue)] = [
                ("Node", .string(node)),
                ("Address", address ?? seen?["Address"] ?? .null),
                ("LeaseAlive", .bool(entry.map { $0.lease != 0 } ?? false)),
                ("LastSeen", entry != nil ? .string(RFC3339.format(now)) : seen?["LastSeen"] ?? .null),
                ("IntermediateNotAfter", intermediate.map { .string($0.notAfter) } ?? .null),
                ("IntermediateRootID", intermediate.map { .string($0.rootID) } ?? .null),
                ("AcknowledgedRootID", view.entries[FleetKeys.ack(node)].flatMap { AckRecord.decode($0.value) }.map { .string($0.activeRootID) } ?? .null),
                ("Services", .int(Int64(services[node] ?? 0))),
                ("ModifyIndex", .int(entry?.modRevision ?? 0)),
                ("Removed", .bool(view.removal(of: node) != nil)),
            ]
            if let removal = view.removal(of: node) { fields.append(("RemovedAt", removal["RemovedAt"] ?? .null)) }
            return .object(fields)
        }
        var live: Set<String> = []
        var result: [JSONValue] = view.entries(under: "hosts/").compactMap { key, entry -> JSONValue? in
            guard let record = try? JSONParser.parse(Array(entry.value)), let node = record["Node"]?.stringValue else { return nil }
            live.insert(node)
            return host(node, address: record["Address"], entry: entry)
        }
        var gone: Set<String> = []
        for prefix in ["removed/", "seen/"] {
            for (_, entry) in view.entries(under: prefix) {
                if let node = (try? JSONParser.parse(Array(entry.value)))?["Node"]?.stringValue { gone.insert(node) }
            }
        }
        for (_, entry) in view.entries(under: "ca/intermediates/") {
            if let record = IntermediateRecord.decode(entry.value) { gone.insert(record.node) }
        }
        for node in gone.subtracting(live).sorted() { result.append(host(node, address: nil, entry: nil)) }
        return result
    }

    static func describe(_ phase: FleetViewFeed.Phase) -> String {
        switch phase {
        case .starting: "starting (serving the saved view)"
        case .listing: "listing"
        case .watching: "watching"
        case .disconnected(let reason): "disconnected, serving the last view: \(reason)"
        case .stopped: "stopped"
        }
    }

    static func describe(_ state: LeaseKeeper.State) -> String {
        switch state {
        case .starting: "starting"
        case .held(let id): "held \(String(UInt64(bitPattern: id), radix: 16))"
        case .unconfirmed(let id): "unconfirmed" + (id.map { " \(String(UInt64(bitPattern: $0), radix: 16))" } ?? "")
        case .stopped: "stopped"
        }
    }
}

extension FleetView {
    /// A hash (FNV-1a, as ContentHash) over every key with its mod revision, sorted: equal for two views of the same
    /// revision of the prefix (and for a fresh range of it).
    public var checksum: String { Self.checksum(entries.map { ($0.key, $0.value.modRevision) }) }

    public static func checksum(_ pairs: [(key: String, modRevision: Int64)]) -> String {
        var text = ""
        for (key, revision) in pairs.sorted(by: { $0.key < $1.key }) { text += "\(key)\u{0}\(revision)\n" }
        return ContentHash.of(bytes: Array(text.utf8))
    }
}
