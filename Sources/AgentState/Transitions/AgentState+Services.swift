// Service transitions: API registrations and deregistrations, and the managed proxies a set of
// services asks for (tokens and ports kept from before).

import AgentConfig
import AgentStore
import ConnectdCore
import Logging

extension AgentState {
    /// Adds or replaces a service registered through the HTTP API (persisted).
    ///
    /// - Parameter mayChange: asked, inside the actor, about the service that `definition`
    ///   would replace (none when the ID is new); false refuses with ``StateError/forbidden(serviceID:)``
    ///   and changes nothing. The API passes the caller's `service:write` on the existing name.
    public func register(_ definition: ServiceDefinition,
                         mayChange: @Sendable (ServiceDefinition) -> Bool = { _ in true }) throws(StateError) {
        var next = snapshot
        if let existing = next.services[definition.id], !mayChange(existing.definition) {
            throw .forbidden(serviceID: definition.id)
        }
        next.services[definition.id] = LocalService(definition: definition, source: .api)
        try commit(withProxies(next, allocator: allocator))
    }

    /// Removes a service and its managed proxy. Returns false when no such service exists.
    ///
    /// - Parameter mayChange: asked, inside the actor, about the service to remove; false refuses
    ///   with ``StateError/forbidden(serviceID:)`` and changes nothing.
    @discardableResult
    public func deregister(serviceID: String,
                           mayChange: @Sendable (ServiceDefinition) -> Bool = { _ in true }) throws(StateError) -> Bool {
        var next = snapshot
        guard let existing = next.services.removeValue(forKey: serviceID) else { return false }
        guard mayChange(existing.definition) else { throw .forbidden(serviceID: serviceID) }
        // The service's registered checks go with it, as in Consul.
        next.checks = next.checks.filter { $0.value.serviceID != serviceID }
        try commit(withProxies(next, allocator: allocator))
        return true
    }

    /// Adds or replaces a check registered through the API (persisted).
    public func registerCheck(_ check: CheckDefinition) throws(StateError) {
        var next = snapshot
        next.checks[check.id] = check
        try commit(next)
    }

    /// Removes an API-registered check; false when there is none with `id`.
    @discardableResult
    public func deregisterCheck(id: String) throws(StateError) -> Bool {
        var next = snapshot
        guard next.checks.removeValue(forKey: id) != nil else { return false }
        try commit(next)
        return true
    }

    /// Replaces every config-file service with `services` (tests and the agent's start use the
    /// whole-configuration transition, ``applyConfiguration(_:)``).
    public func applyConfigFileServices(_ services: [ServiceDefinition]) throws(StateError) {
        try commit(withProxies(withFileServices(services, in: snapshot), allocator: allocator))
    }

    /// Moves the index forward without changing anything, waking every watcher of ``watch``.
    public func touch() throws(StateError) {
        try commit(snapshot, always: true)
    }

    // MARK: - Computing the next services and proxies

    /// `snapshot` with its config-file services replaced by `services`. API-registered services
    /// stay, except those a config file now defines (the file wins).
    func withFileServices(_ services: [ServiceDefinition], in snapshot: StateSnapshot) -> StateSnapshot {
        var next = snapshot
        next.services = snapshot.services.filter { $0.value.source == .api }
        for definition in services {
            if next.services[definition.id] != nil {
                logger.warning("service registered through the API is replaced by a config file definition", metadata: ["service": "\(definition.id)"])
            }
            next.services[definition.id] = LocalService(definition: definition, source: .configFile)
        }
        return next
    }

    /// `snapshot` with the managed proxies its services ask for, keeping tokens and ports of
    /// ones that exist (in memory or in the store).
    func withProxies(_ snapshot: StateSnapshot, allocator: PortAllocator) throws(StateError) -> StateSnapshot {
        let current = self.snapshot
        let wanted = snapshot.services.values.compactMap { service -> (LocalService, ManagedProxyRequest)? in
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
        var next = snapshot
        next.proxies = result
        return next
    }

    private func previousPort(_ id: String, _ current: StateSnapshot) -> Int? {
        if let proxy = current.proxies[id], !proxy.bindPortIsExplicit { return proxy.bindPort }
        return storedProxies[id]?.bindPort
    }

    /// `config.bind_port` when it is a whole number (validated at decode time).
    static func explicitBindPort(_ request: ManagedProxyRequest) -> Int? {
        if let port = request.sidecar?.port { return port }
        return switch request.config["bind_port"] {
        case .int(let port)?: Int(port)
        case .double(let port)? where port == port.rounded(): Int(port)
        default: nil
        }
    }
}
