// The AgentState actor: every change goes through `transition(to:)`, which persists, then publishes.

import AgentConfig
import AgentStore
import ConnectdCore
import Logging
import Synchronization

/// Why a change was refused; the state is unchanged when one is thrown.
public enum StateError: Error, Sendable, CustomStringConvertible {
    case persistence(StoreError)
    case portAllocation(PortAllocationError)
    case conflict(String)
    /// The caller may not replace or remove the service that is there now.
    case forbidden(serviceID: String)

    public var description: String {
        switch self {
        case .forbidden(let id): "not allowed to change service \(id)"
        case .persistence(let error): "cannot save state: \(error)"
        case .portAllocation(let error): error.description
        case .conflict(let message): message
        }
    }
}

/// The single source of truth for services and managed proxies.
///
/// Writers call the actor; readers take ``snapshot`` (a value, no await) and park on ``watch``.
/// The index is the durable store's revision + 1, so it never goes back, not even across restarts.
/// A change is written to the durable store first and published only when that succeeded, so a
/// failed write (full disk) loses nothing and changes nothing.
public actor AgentState {
    public nonisolated let watch: IndexWatch
    private nonisolated let published: Mutex<StateSnapshot>
    private let store: any DurableStore
    private var allocator: PortAllocator
    private let logger: Logger
    /// Proxy records read at open, consulted when a proxy is (re)created so tokens and ports survive.
    private var storedProxies: [String: ProxyRecord]

    /// The current state; cheap, never blocks.
    public nonisolated var snapshot: StateSnapshot { published.withLock { $0 } }

    /// Opens the state from `store`: API-registered services come back with their proxies'
    /// tokens and ports. Records of the wrong shape are quarantined and logged, never fatal.
    public init(store: any DurableStore, allocator: PortAllocator, logger: Logger) {
        self.store = store
        self.allocator = allocator
        self.logger = logger
        var proxies: [String: ProxyRecord] = [:]
        var services: [String: LocalService] = [:]
        do {
            for entry in try store.list(prefix: "proxies/") {
                guard let record = ProxyRecord(json: entry.value) else {
                    store.quarantine(entry.key, reason: "not a proxy record (expected ProxyServiceID, TargetServiceID, ProxyToken, BindPort, Source)", logger: logger)
                    continue
                }
                proxies[record.proxyServiceID] = record
            }
            for entry in try store.list(prefix: "services/") {
                let sink = ProblemSink(file: entry.key)
                guard let body = entry.value["Definition"],
                      let reader = ObjectReader.object(body, path: "Definition", sink: sink, matching: .lenient),
                      let definition = ServiceDefinitionDecoder.decode(reader, origin: .api), sink.problems.isEmpty
                else {
                    let problems = sink.problems.map { "\($0.keyPath): \($0.message)" }
                    let reason = problems.isEmpty ? "not a service record (expected a Definition object with a Name)" : problems.joined(separator: "; ")
                    store.quarantine(entry.key, reason: reason, logger: logger)
                    continue
                }
                services[definition.id] = LocalService(definition: definition, source: .api)
            }
        } catch {
            logger.error("cannot list stored state", metadata: ["error": "\(error)"])
        }
        storedProxies = proxies
        var initial = StateSnapshot(index: store.revision + 1, services: services, proxies: [:])
        for service in services.values {
            guard let request = service.definition.managedProxy else { continue }
            let id = service.definition.proxyServiceID
            if let record = proxies[id] {
                initial.proxies[id] = ManagedProxy(target: service.definition, request: request, token: record.token,
                                                   bindPort: record.bindPort, bindPortIsExplicit: Self.explicitBindPort(request) != nil,
                                                   source: .api)
            }
        }
        watch = IndexWatch(index: initial.index)
        published = Mutex(initial)
    }

    /// Updates the port range and probe (after a reload).
    public func setAllocator(_ allocator: PortAllocator) { self.allocator = allocator }

    // MARK: - Changes

    /// Replaces every config-file service with `services` (at start and on reload).
    /// API-registered services stay, except those a config file now defines (the file wins).
    public func applyConfigFileServices(_ services: [ServiceDefinition]) throws(StateError) {
        var desired = snapshot.services.filter { $0.value.source == .api }
        for definition in services {
            if desired[definition.id] != nil {
                logger.warning("service registered through the API is replaced by a config file definition", metadata: ["service": "\(definition.id)"])
            }
            desired[definition.id] = LocalService(definition: definition, source: .configFile)
        }
        try transition(to: desired)
    }

    /// Adds or replaces a service registered through the HTTP API (persisted).
    ///
    /// - Parameter mayChange: asked, inside the actor, about the service that `definition`
    ///   would replace (none when the ID is new); false refuses with ``StateError/forbidden(serviceID:)``
    ///   and changes nothing. The API passes the caller's `service:write` on the existing name.
    public func register(_ definition: ServiceDefinition,
                         mayChange: @Sendable (ServiceDefinition) -> Bool = { _ in true }) throws(StateError) {
        var desired = snapshot.services
        if let existing = desired[definition.id], !mayChange(existing.definition) {
            throw .forbidden(serviceID: definition.id)
        }
        desired[definition.id] = LocalService(definition: definition, source: .api)
        try transition(to: desired)
    }

    /// Removes a service and its managed proxy. Returns false when no such service exists.
    ///
    /// - Parameter mayChange: asked, inside the actor, about the service to remove; false refuses
    ///   with ``StateError/forbidden(serviceID:)`` and changes nothing.
    @discardableResult
    public func deregister(serviceID: String,
                           mayChange: @Sendable (ServiceDefinition) -> Bool = { _ in true }) throws(StateError) -> Bool {
        var desired = snapshot.services
        guard let existing = desired.removeValue(forKey: serviceID) else { return false }
        guard mayChange(existing.definition) else { throw .forbidden(serviceID: serviceID) }
        try transition(to: desired)
        return true
    }

    /// Moves the index forward without changing services or proxies, waking every watcher: used
    /// when something else they render from changes (a reload that changes proxy defaults).
    public func touch() throws(StateError) {
        let current = snapshot
        let revision: UInt64
        do throws(StoreError) {
            revision = try store.commit([])
        } catch {
            throw .persistence(error)
        }
        var next = current
        next.index = revision + 1
        published.withLock { $0 = next }
        watch.advance(to: next.index)
    }

    // MARK: - The one transition

    /// Computes proxies for `services`, persists what changed, then publishes the new snapshot.
    private func transition(to services: [String: LocalService]) throws(StateError) {
        let current = snapshot
        let proxies = try proxies(for: services, current: current)
        var next = StateSnapshot(index: current.index, services: services, proxies: proxies)
        guard !next.sameContent(as: current) else { return }

        var operations: [StoreOperation] = []
        for (id, service) in services where service.source == .api && current.services[id] != service {
            operations.append(.put(key: "services/\(id)", value: .object([("Definition", service.definition.registrationJSON)])))
        }
        for (id, service) in current.services where service.source == .api && services[id]?.source != .api {
            operations.append(.delete(key: "services/\(id)"))
        }
        for (id, proxy) in proxies where storedProxies[id] != ProxyRecord(proxy) {
            operations.append(.put(key: "proxies/\(id)", value: ProxyRecord(proxy).json))
        }
        for id in storedProxies.keys where proxies[id] == nil {
            operations.append(.delete(key: "proxies/\(id)"))
        }
        // Every change is one store revision, even one with nothing durable in it, so the index
        // (revision + 1, never 0) only grows, across restarts too.
        let revision: UInt64
        do throws(StoreError) {
            revision = try store.commit(operations)
        } catch {
            throw .persistence(error)
        }
        storedProxies = proxies.mapValues(ProxyRecord.init)
        next.index = revision + 1
        published.withLock { $0 = next }
        watch.advance(to: next.index)
    }

    /// The managed proxies `services` ask for, keeping tokens and ports of ones that exist.
    private func proxies(for services: [String: LocalService], current: StateSnapshot) throws(StateError) -> [String: ManagedProxy] {
        let wanted = services.values.compactMap { service -> (LocalService, ManagedProxyRequest)? in
            service.definition.managedProxy.map { (service, $0) }
        }.sorted { $0.0.definition.id < $1.0.definition.id }

        var taken: [Int: String] = [:]
        for (service, request) in wanted {
            guard let port = Self.explicitBindPort(request) else { continue }
            if let other = taken[port] {
                throw .conflict("bind_port \(port) of \(service.definition.proxyServiceID) is already used by \(other)")
            }
            taken[port] = service.definition.proxyServiceID
        }
        var result: [String: ManagedProxy] = [:]
        // Proxies that keep their previous port claim it before new ones are allocated.
        let ordered = wanted.sorted { lhs, rhs in
            let l = previousPort(lhs.0.definition.proxyServiceID, current) != nil
            let r = previousPort(rhs.0.definition.proxyServiceID, current) != nil
            return l && !r
        }
        for (service, request) in ordered {
            let id = service.definition.proxyServiceID
            let explicit = Self.explicitBindPort(request)
            let previous = previousPort(id, current)
            let port: Int
            do throws(PortAllocationError) {
                port = try allocator.choose(proxyID: id, explicit: explicit, previous: previous,
                                            taken: Set(taken.filter { $0.value != id }.keys))
            } catch {
                throw .portAllocation(error)
            }
            taken[port] = id
            let token = current.proxies[id]?.token ?? storedProxies[id]?.token ?? ProxyToken.generate()
            result[id] = ManagedProxy(target: service.definition, request: request, token: token, bindPort: port,
                                      bindPortIsExplicit: explicit != nil, source: service.source)
        }
        return result
    }

    private func previousPort(_ id: String, _ current: StateSnapshot) -> Int? {
        if let proxy = current.proxies[id], !proxy.bindPortIsExplicit { return proxy.bindPort }
        return storedProxies[id]?.bindPort
    }

    /// `config.bind_port` when it is a whole number (validated at decode time).
    static func explicitBindPort(_ request: ManagedProxyRequest) -> Int? {
        switch request.config["bind_port"] {
        case .int(let port)?: Int(port)
        case .double(let port)? where port == port.rounded(): Int(port)
        default: nil
        }
    }
}
