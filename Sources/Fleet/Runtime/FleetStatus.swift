// What `GET /v1/agent/fleet` and `connectd fleet status` show: the hosts this agent sees in the
// fleet, each etcd member's health, and this agent's view (revision, lag, phase, checksum).

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
            ])),
            ("Lease", .string(Self.describe(lease))),
            ("Removed", .bool(view.removal(of: node) != nil)),
            ("Hosts", .array(Self.hosts(view))),
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

    /// One line for `STATUS=` and `/v1/agent/self`.
    public func summary(node: String) async -> String {
        let view = await feed.view
        let phase = await feed.phase
        let hosts = view.entries(under: "hosts/").count
        let intentions = view.entries(under: "intentions/").count
        let removed = view.removal(of: node) != nil ? "THIS HOST WAS REMOVED from the fleet; " : ""
        return "fleet: \(removed)\(hosts) host(s), \(intentions) intention(s), view at revision \(view.revision) (\(Self.describe(phase)))"
    }

    static func hosts(_ view: FleetView) -> [JSONValue] {
        var services: [String: Int] = [:]
        for key in view.entries.keys where key.hasPrefix("catalog/") {
            if let node = FleetKeys.catalogNode(key) { services[node, default: 0] += 1 }
        }
        let live = view.entries(under: "hosts/").compactMap { key, entry -> JSONValue? in
            guard let host = try? JSONParser.parse(Array(entry.value)), let node = host["Node"]?.stringValue else { return nil }
            let intermediate = view.entries[FleetKeys.intermediate(node)].flatMap { IntermediateRecord.decode($0.value) }
            return .object([
                ("Node", .string(node)),
                ("Address", host["Address"] ?? .null),
                ("LeaseAlive", .bool(entry.lease != 0)),
                ("IntermediateNotAfter", intermediate.map { .string($0.notAfter) } ?? .null),
                ("IntermediateRootID", intermediate.map { .string($0.rootID) } ?? .null),
                ("AcknowledgedRootID", view.entries[FleetKeys.ack(node)].flatMap { AckRecord.decode($0.value) }.map { .string($0.activeRootID) } ?? .null),
                ("Services", .int(Int64(services[node] ?? 0))),
                ("ModifyIndex", .int(entry.modRevision)),
                ("Removed", .bool(view.removal(of: node) != nil)),
            ])
        }
        let removed = view.entries(under: "removed/").compactMap { _, entry -> JSONValue? in
            guard let record = try? JSONParser.parse(Array(entry.value)), let node = record["Node"]?.stringValue,
                  view.entries[FleetKeys.host(node)] == nil else { return nil }
            return .object([
                ("Node", .string(node)), ("Address", .null), ("LeaseAlive", .bool(false)), ("IntermediateNotAfter", .null),
                ("IntermediateRootID", .null), ("AcknowledgedRootID", .null), ("Services", .int(0)), ("ModifyIndex", .int(entry.modRevision)), ("Removed", .bool(true)),
                ("RemovedAt", record["RemovedAt"] ?? .null),
            ])
        }
        return live + removed
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
