// Fleet mode put together for one agent: the etcd client, the view (from disk first, so a
// restart during an outage serves at once, then listed and watched), the host's lease and its
// catalog entries, the CA, and intention writes. What the view brings is handed to AgentState.

import AgentConfig
import AgentState
import AgentStore
import EtcdClient
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

public final class FleetRuntime: Sendable {
    public let client: EtcdClient
    public let keys: FleetKeys
    public let feed: FleetViewFeed
    public let lease: LeaseKeeper
    public let publisher: CatalogPublisher
    public let authority: FleetAuthority
    /// The services whose catalog this agent keeps.
    public let interest: FleetInterest
    private let state: AgentState
    private let logger: Logger
    /// A host's lease TTL: its entries leave the catalog this long after it stops answering.
    public static let leaseTTL: Int64 = 10

    /// - Parameter identity: this host as the catalog shows it (read at each publication).
    /// - Parameter leavesCurrent: whether every cached leaf is signed by the current signer.
    public init(settings: FleetSettings, dataDir: String, node: String, clusterID: String?, state: AgentState, proxyStatus: @escaping @Sendable (ManagedProxy) -> CheckStatus,
                identity: @escaping @Sendable () -> CatalogPublisher.Identity, leavesCurrent: @escaping @Sendable () -> Bool,
                etcdCalls: EtcdClient.CallObserver? = nil, logger: Logger) throws {
        var named = logger
        named[metadataKey: "component"] = "fleet"
        let fleetLogger = named
        self.logger = fleetLogger
        self.state = state
        var password: String?
        if let file = settings.etcdPasswordFile {
            password = String(decoding: try AtomicFile.read(file, limit: 4096), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let client = EtcdClient(EtcdClient.Settings(endpoints: settings.etcdEndpoints, username: settings.etcdUsername, password: password),
                                logger: fleetLogger, observe: etcdCalls)
        self.client = client
        keys = FleetKeys(keyPrefix: settings.keyPrefix)
        let directory = dataDir + "/fleet"
        try AtomicFile.makeDirectory(directory)
        let file = FleetViewFile(directory: directory)
        let saved = file.load { problem in fleetLogger.warning("the saved fleet view is unreadable; starting empty", metadata: ["problem": "\(problem)"]) }
        authority = try FleetAuthority(client: client, keys: keys, node: node, directory: directory, rootHolder: settings.rootHolder,
                                       clusterID: clusterID, leavesCurrent: leavesCurrent, logger: fleetLogger)
        let authority = authority
        let keys = keys
        let publisherBox = PublisherBox()
        let decoder = CatalogDecoder()
        self.decoder = decoder
        let interest = FleetInterest()
        self.interest = interest
        let seen = settings.rootHolder ? LastSeenRecorder(client: client, keys: keys, logger: fleetLogger) : nil
        feed = FleetViewFeed(client: client, keys: keys, base: FleetScope.base(node: node, rootHolder: settings.rootHolder),
                             interest: interest, file: file, initial: saved ?? FleetView(), logger: fleetLogger) { view, touched in
            await Self.adopt(view, touched: touched, into: state, authority: authority, publisher: publisherBox.publisher,
                             decoder: decoder, logger: fleetLogger)
            await authority.reconcile(view)
            if let seen, touched.contains("hosts") { await seen.note(view) }
        }
        let feed = feed
        publisher = CatalogPublisher(client: client, keys: keys, state: state, proxyStatus: proxyStatus, identity: identity,
                                     view: { await feed.view },
                                     onUse: { services in if interest.pin(services) { feed.scopesChanged() } },
                                     logger: fleetLogger)
        let publisher = publisher
        publisherBox.publisher = publisher
        lease = LeaseKeeper(client: client, ttlSeconds: Self.leaseTTL, logger: fleetLogger) { id in await publisher.leaseGranted(id) }
        if let saved {
            fleetLogger.info("serving the saved fleet view until etcd answers", metadata: ["revision": "\(saved.revision)"])
        }
        initial = saved ?? FleetView()
    }

    private let initial: FleetView
    private let decoder: CatalogDecoder

    /// Hands the saved view to the state and routes intention writes to etcd; call before serving.
    public func start() async {
        // The first listing already holds what this host's registrations and proxies use.
        _ = interest.pin(CatalogPublisher.servicesInUse(state.snapshot))
        await state.setSharedWriter(EtcdIntentionWriter(client: client, keys: keys))
        // Back from an outage: check the lease now, so a lost one is replaced (and the catalog
        // entries re-written) without waiting for the next keepalive round.
        let lease = lease, publisher = publisher
        await feed.setOnReconnect {
            await lease.renewNow()
            await publisher.publish()
        }
        await Self.adopt(initial, touched: ["ca", "intentions", "catalog"], into: state, authority: authority, publisher: publisher,
                         decoder: decoder, logger: logger)
    }

    /// The services to run in the agent's group.
    public var services: [any Service] {
        [feed, lease, publisher, FleetCAService(feed: feed, authority: authority, state: state, logger: logger)]
    }

    /// Rotates the fleet's root (on a root holder) and returns once this agent serves it.
    public func rotateRoot() async throws -> (from: String, to: String) {
        let rotated = try await authority.rotate(await feed.view)
        let deadline = ContinuousClock.now + .seconds(5)
        while !state.snapshot.ca.roots.contains(where: { $0.id == rotated.to && $0.active }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return (rotated.from, rotated.to)
    }

    /// Notes a catalog query for `service`; true when its catalog is kept (answer at once).
    public func uses(service: String) -> Bool { interest.ask(service) }

    /// Starts keeping `service`'s catalog (after ``uses(service:)`` said it is not yet) and
    /// waits until it is listed, at most 3 s (etcd unreachable: the query answers from what the
    /// view has).
    public func use(service: String) async {
        _ = interest.ask(service)
        _ = await feed.ensure(service: service, timeout: .seconds(3))
    }

    /// Closes etcd connections (after the group stopped).
    public func shutdown() async { try? await client.shutdown() }

    static func adopt(_ view: FleetView, touched: Set<String>, into state: AgentState, authority: FleetAuthority,
                      publisher: CatalogPublisher?, decoder: CatalogDecoder, logger: Logger) async {
        let intentions = touched.contains("intentions") ? view.intentions { key in
            logger.error("an intention record in etcd is unreadable; it is ignored", metadata: ["key": "\(key)"])
        } : nil
        let ca = touched.contains("ca") ? authority.caState(view) : nil
        var catalog = touched.contains("catalog") ? decoder.catalog(view) : nil
        if var fleetCatalog = catalog, let publisher {
            // This host's own instances are always in its catalog: etcd lacks them for a moment
            // after an expired lease (until they are re-written under the new one).
            let present = Set(view.entries.keys)
            let missing = await publisher.ownInstances(in: view).filter { !present.contains($0.key) }
            if !missing.isEmpty {
                fleetCatalog = FleetCatalog(instances: fleetCatalog.instances + missing.values, index: fleetCatalog.index)
                catalog = fleetCatalog
            }
        }
        await state.adoptShared(intentions: intentions, ca: ca, catalog: catalog)
    }
}

/// The publisher, set once both it and the feed (whose callback needs it) exist.
private final class PublisherBox: Sendable {
    private let value = Mutex<CatalogPublisher?>(nil)
    var publisher: CatalogPublisher? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}

/// Re-checks the CA every 5 s even when etcd is quiet: the root holder's half-life renewals and
/// pruning, this host's acknowledgement once its leaves are re-issued, and its intermediate
/// expiring while etcd is unreachable.
struct FleetCAService: Service {
    let feed: FleetViewFeed
    let authority: FleetAuthority
    let state: AgentState
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(5)) }
            if Task.isShuttingDownGracefully { break }
            // Services no one asked for in a while stop being watched.
            feed.scopesChanged()
            let view = await feed.view
            await authority.reconcile(view)
            await state.adoptShared(ca: authority.caState(view))
        }
    }
}
