// AgentState: the one owner of durable truth. Services, managed proxies (with their tokens and
// ports), intentions and the CA live in one `StateSnapshot`; every change is one transition that
// commits one store transaction (one revision), then publishes the next snapshot and advances
// the watches whose section moved. CA and authorization code only compute next values.

import AgentConfig
import AgentStore
import Authorization
import CertificateAuthority
import ConnectdCore
import Foundation
import Logging
import Synchronization

/// Why a change was refused; the state is unchanged when one is thrown.
public enum StateError: Error, Sendable, CustomStringConvertible {
    case persistence(StoreError)
    case portAllocation(PortAllocationError)
    case conflict(String)
    /// The caller may not replace or remove the service that is there now.
    case forbidden(serviceID: String)
    case intention(IntentionError)
    case ca(CAError)
    /// A stored record that must not be set aside (it would change what is allowed) is unusable.
    case damagedRecord(key: String, reason: String)

    public var description: String {
        switch self {
        case .forbidden(let id): "not allowed to change service \(id)"
        case .persistence(let error): "cannot save state: \(error)"
        case .portAllocation(let error): error.description
        case .conflict(let message): message
        case .intention(let error): error.description
        case .ca(let error): error.description
        case .damagedRecord(let key, let reason): "state record \(key) is damaged: \(reason)"
        }
    }
}

/// The single source of truth.
///
/// Writers call the actor; readers take ``snapshot`` (a value copied under a lock that is held
/// only for the copy, never across signing or fsync) and park on a watch. ``watch`` moves with
/// every change (its index is the store revision + 1, so it never goes back, not even across
/// restarts); ``intentionsWatch`` and ``rootsWatch`` move only when their section does, so a
/// roots long-poll is not woken by a service registration.
public actor AgentState {
    public nonisolated let watch: IndexWatch
    public nonisolated let intentionsWatch: IndexWatch
    public nonisolated let rootsWatch: IndexWatch
    /// Fleet mode: moves with the etcd revision of the fleet catalog's last change.
    public nonisolated let catalogWatch: IndexWatch
    /// Fleet mode: intentions and the CA are the fleet's (etcd's); this store keeps neither.
    public nonisolated let shared: Bool
    /// Fleet mode: where intention writes go.
    var sharedWriter: (any SharedIntentionWriter)?
    /// Every managed proxy's run status, as the supervisor publishes it.
    public nonisolated let proxyStatus = ProxyStatusBoard()
    private nonisolated let published: Mutex<StateSnapshot>
    let store: any DurableStore
    var allocator: PortAllocator
    let logger: Logger
    /// Proxy records as stored, consulted when a proxy is (re)created so tokens and ports survive.
    var storedProxies: [String: ProxyRecord]

    /// The current state; cheap, never blocks on a writer.
    public nonisolated var snapshot: StateSnapshot { published.withLock { $0 } }

    /// One part of the published snapshot, without copying the rest (per-request reads).
    public nonisolated func read<Part: Sendable>(_ part: (StateSnapshot) -> Part) -> Part { published.withLock { part($0) } }

    /// Opens the state from `store`: API-registered services come back with their proxies'
    /// tokens and ports, intentions and the CA with their indexes. A store without a CA gets one
    /// (from `caSettings`) in the first commit. Records of the wrong shape are quarantined and
    /// logged; a damaged or missing CA is never replaced: it throws ``StateError/ca(_:)``.
    public init(store: any DurableStore, allocator: PortAllocator, caSettings: CASettings = CASettings(),
                logger: Logger, now: Date = Date(), shared: Bool = false) throws(StateError) {
        self.store = store
        self.allocator = allocator
        self.logger = logger
        self.shared = shared
        let loaded = try StateLoader(store: store, logger: logger).load(caSettings: caSettings, now: now, shared: shared)
        storedProxies = loaded.storedProxies
        watch = IndexWatch(index: loaded.snapshot.index)
        intentionsWatch = IndexWatch(index: loaded.snapshot.intentions.index)
        rootsWatch = IndexWatch(index: loaded.snapshot.ca.rootsIndex)
        catalogWatch = IndexWatch(index: loaded.snapshot.fleetCatalog?.index ?? 1)
        published = Mutex(loaded.snapshot)
    }

    /// Updates the port range and probe used by later transitions.
    public func setAllocator(_ allocator: PortAllocator) { self.allocator = allocator }

    /// Releases every parked watcher (the agent is stopping).
    public nonisolated func shutdownWatches() {
        watch.shutdown()
        intentionsWatch.shutdown()
        rootsWatch.shutdown()
        catalogWatch.shutdown()
    }

    // MARK: - The one transition

    /// Commits what differs between the current snapshot and `next` as one store transaction,
    /// then publishes `next` (stamped with the revision) and advances the watches. When the
    /// commit fails, nothing changes in memory (and, by the store's contract, on disk).
    ///
    /// - Parameter always: commit a revision even when nothing differs (a forced wake-up).
    @discardableResult
    func commit(_ proposed: StateSnapshot, always: Bool = false) throws(StateError) -> StateSnapshot {
        let current = snapshot
        guard always || !proposed.sameContent(as: current) else { return current }
        let proxyRecords = proposed.proxies.mapValues(ProxyRecord.init)
        var operations = Self.serviceOperations(from: current.services, to: proposed.services)
        for (id, check) in proposed.checks.sorted(by: { $0.key < $1.key }) where current.checks[id] != check {
            operations.append(.put(key: "checks/\(id)", value: .object([("Definition", check.registrationJSON)])))
        }
        for id in current.checks.keys.sorted() where proposed.checks[id] == nil {
            operations.append(.delete(key: "checks/\(id)"))
        }
        for (id, record) in proxyRecords.sorted(by: { $0.key < $1.key }) where storedProxies[id] != record {
            operations.append(.put(key: "proxies/\(id)", value: record.json))
        }
        for id in storedProxies.keys.sorted() where proxyRecords[id] == nil {
            operations.append(.delete(key: "proxies/\(id)"))
        }
        if !shared {
            operations += proposed.intentions.operations(from: current.intentions)
            operations += proposed.ca.operations(from: current.ca)
        }
        let revision: UInt64
        do throws(StoreError) {
            revision = try store.commit(operations)
        } catch {
            throw .persistence(error)
        }
        storedProxies = proxyRecords
        var next = proposed
        next.index = revision + 1
        if !shared {
            next.intentions = proposed.intentions.stamped(revision: revision, previous: current.intentions)
            next.ca = proposed.ca.stamped(revision: revision, previous: current.ca)
        }
        publish(next)
        return next
    }

    /// Makes `next` the current snapshot and moves every watch to its section's index.
    func publish(_ next: StateSnapshot) {
        published.withLock { $0 = next }
        watch.advance(to: next.index)
        intentionsWatch.advance(to: next.intentions.index)
        rootsWatch.advance(to: next.ca.rootsIndex)
        if let catalog = next.fleetCatalog { catalogWatch.advance(to: catalog.index) }
    }

    /// Puts of changed API-registered services, deletes of those gone (config-file services are
    /// not stored: the files are their truth).
    static func serviceOperations(from current: [String: LocalService], to next: [String: LocalService]) -> [StoreOperation] {
        var operations: [StoreOperation] = []
        for (id, service) in next.sorted(by: { $0.key < $1.key }) where service.source == .api && current[id] != service {
            operations.append(.put(key: "services/\(id)", value: .object([("Definition", service.definition.registrationJSON)])))
        }
        for (id, service) in current.sorted(by: { $0.key < $1.key }) where service.source == .api && next[id]?.source != .api {
            operations.append(.delete(key: "services/\(id)"))
        }
        return operations
    }
}
