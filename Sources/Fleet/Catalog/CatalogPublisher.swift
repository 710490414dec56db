// Publishes this host's services and managed proxies (with the proxy listener check) under its
// lease, and keeps them there: every second what should be published is compared with what was
// written, and every few seconds with what the view shows (anti-entropy: a registration made
// while etcd was unreachable, or an entry lost with an expired lease, is written again).

import AgentConfig
import AgentState
import EtcdClient
import Foundation
import Logging
import ServiceLifecycle

public actor CatalogPublisher: Service {
    public struct Identity: Sendable {
        public var node: String
        public var nodeID: String
        public var datacenter: String
        public var address: String

        public init(node: String, nodeID: String, datacenter: String, address: String) {
            self.node = node
            self.nodeID = nodeID
            self.datacenter = datacenter
            self.address = address
        }
    }

    private let client: EtcdClient
    private let keys: FleetKeys
    private let state: AgentState
    /// A proxy's check as other hosts see it (its listener and its target's checks).
    private let proxyStatus: @Sendable (ManagedProxy) -> CheckStatus
    private let identity: @Sendable () -> Identity
    private let view: @Sendable () async -> FleetView
    /// Told, before each pass, the services this host's registrations and proxies use.
    private let onUse: @Sendable (Set<String>) -> Void
    private let logger: Logger
    private var lease: Int64?
    /// Key → value as last written under `lease`.
    private var written: [String: Data] = [:]
    private var passes = 0
    private var lastError: String?
    private var reportedRemoval = false
    /// etcd takes at most 128 operations per transaction.
    static let batch = 100

    public init(client: EtcdClient, keys: FleetKeys, state: AgentState, proxyStatus: @escaping @Sendable (ManagedProxy) -> CheckStatus, identity: @escaping @Sendable () -> Identity,
                view: @escaping @Sendable () async -> FleetView, onUse: @escaping @Sendable (Set<String>) -> Void = { _ in },
                logger: Logger) {
        self.client = client
        self.keys = keys
        self.state = state
        self.proxyStatus = proxyStatus
        self.identity = identity
        self.view = view
        self.onUse = onUse
        self.logger = logger
    }

    /// A new lease (first, or after the old one was lost): everything is written again under it.
    public func leaseGranted(_ id: Int64) async {
        lease = id
        written = [:]
        await publish()
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await publish()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
        }
    }

    /// This host's instances as it publishes them (none once it was removed), for its own
    /// catalog while etcd does not show them (just after an expired lease, before the re-write).
    public func ownInstances(in view: FleetView) -> [String: CatalogInstance] {
        guard view.removal(of: identity().node) == nil else { return [:] }
        var result: [String: CatalogInstance] = [:]
        for (key, value) in desired() where key.hasPrefix("catalog/") {
            guard let record = CatalogRecord.decode(value) else { continue }
            let index = view.index(of: "catalog")
            result[key] = record.instance(ViewEntry(value: value, createRevision: Int64(index), modRevision: Int64(index), lease: 0))
        }
        return result
    }

    /// What this host should have in the catalog now, by relative key.
    func desired() -> [String: Data] {
        let snapshot = state.snapshot
        let me = identity()
        var records: [CatalogRecord] = []
        for service in snapshot.services.values {
            let definition = service.definition
            records.append(CatalogRecord(CatalogInstance(
                node: me.node, nodeID: me.nodeID, address: definition.address.isEmpty ? me.address : definition.address,
                datacenter: me.datacenter, serviceID: definition.id, serviceName: definition.name, kind: "", port: definition.port,
                tags: definition.tags ?? [])))
        }
        for proxy in snapshot.proxies.values {
            let check = proxyStatus(proxy)
            records.append(CatalogRecord(CatalogInstance(
                node: me.node, nodeID: me.nodeID, address: me.address, datacenter: me.datacenter, serviceID: proxy.proxyServiceID,
                serviceName: proxy.proxyServiceName, kind: "connect-proxy", port: proxy.bindPort, destinationName: proxy.targetServiceName,
                destinationServiceID: proxy.targetServiceID, passing: check.isPassing, checkOutput: check.output)))
        }
        var result = Dictionary(records.map { ($0.key, $0.encoded) }, uniquingKeysWith: { first, _ in first })
        let host = ["Node": me.node, "NodeID": me.nodeID, "Address": me.address, "Datacenter": me.datacenter]
        // Sorted keys: a dictionary's order differs between encodings, and every other order
        // would be a rewrite (an event for every root holder) on each pass.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        result[FleetKeys.host(me.node)] = (try? encoder.encode(host)) ?? Data()
        return result
    }

    /// One pass: writes what differs from what was written; every fifth pass (and whenever the
    /// written set is empty) against the view instead, which also removes stale keys of this node.
    public func publish() async {
        onUse(Self.servicesInUse(state.snapshot))
        guard let lease else { return }
        passes += 1
        let current = await view()
        // A removed host publishes nothing (and takes back what it had), until it is re-added.
        let removed = current.removal(of: identity().node) != nil
        if removed, !reportedRemoval { logger.error("this host was removed from the fleet (connectd fleet remove-host): it publishes no catalog entries") }
        reportedRemoval = removed
        let want = removed ? [:] : desired()
        if passes % 5 == 0 || written.isEmpty || removed {
            let node = identity().node
            written = [:]
            for (key, entry) in current.entries where entry.lease == lease && Self.belongs(key, to: node) {
                written[key] = entry.value
            }
            // Keys of this node under another (dead) lease, or no longer wanted: delete.
            for (key, entry) in current.entries where Self.belongs(key, to: node) && (want[key] == nil || entry.lease != lease) {
                written[key] = written[key] ?? Data("\u{0}stale".utf8)
            }
        }
        var operations: [RequestOp] = []
        var applied: [String: Data?] = [:]
        for (key, value) in want.sorted(by: { $0.key < $1.key }) where written[key] != value {
            operations.append(.put(PutRequest(key: keys.full(key), value: value, lease: lease)))
            applied[key] = value
        }
        for key in written.keys.sorted() where want[key] == nil {
            operations.append(.delete(DeleteRangeRequest(key: keys.full(key))))
            applied[key] = .some(nil)
        }
        guard !operations.isEmpty else { return }
        var start = 0
        while start < operations.count {
            let chunk = Array(operations[start..<min(start + Self.batch, operations.count)])
            do throws(EtcdError) {
                _ = try await client.txn(TxnRequest(compare: [], success: chunk))
            } catch {
                let text = "\(error)"
                if lastError != text { logger.warning("cannot publish this host's catalog entries; retrying", metadata: ["error": "\(text)"]) }
                lastError = text
                // Compare against the view on the next pass: what landed is known only there.
                written = [:]
                return
            }
            start += Self.batch
        }
        if lastError != nil { logger.info("catalog entries published again") }
        lastError = nil
        for (key, value) in applied {
            if let value { written[key] = value } else { written.removeValue(forKey: key) }
        }
    }

    /// The services whose catalog this host needs: its own (their prefixes hold its entries)
    /// and those its proxies front and dial.
    public static func servicesInUse(_ snapshot: StateSnapshot) -> Set<String> {
        var names = Set(snapshot.services.values.map(\.definition.name))
        for proxy in snapshot.proxies.values {
            names.insert(proxy.targetServiceName)
            names.formUnion(proxy.upstreamServiceNames)
        }
        return names
    }

    static func belongs(_ key: String, to node: String) -> Bool {
        key == FleetKeys.host(node) || FleetKeys.catalogNode(key) == node
    }
}
