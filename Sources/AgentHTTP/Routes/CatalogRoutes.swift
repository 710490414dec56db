// Catalog and health: /v1/health/connect/:service, /v1/catalog/connect/:service,
// /v1/catalog/services. On a single host from local state, blocking on the state index; in
// fleet mode from the fleet catalog this agent keeps (the services it uses, on every host),
// blocking on its etcd revision; the list of all services is read from etcd.

import AgentConfig
import AgentState
import AgentStore
import Authorization
import ConnectdCore

enum CatalogRoutes {
    static func routes(_ backend: any AgentBackend) -> [Route] {
        [
            perService(.prefix("/v1/health/connect/"), backend) { request, snapshot, authorizer, configuration throws(APIError) in
                let passingOnly = request.hasQuery("passing")
                let name = request.pathSuffix
                try ACLCheck.require(authorizer.discoveryRead(name))
                if let catalog = snapshot.fleetCatalog {
                    return .array(catalog.proxies(for: name).filter { !passingOnly || $0.passing }.map(FleetCatalogJSON.health))
                }
                return .array(connectProxies(for: name, snapshot).compactMap { proxy -> JSONValue? in
                    let check = backend.health.status(of: proxy.proxyServiceID)
                    // Consul's alias behaviour: the proxy is healthy only while its target's checks pass.
                    let target = snapshot.services[proxy.targetServiceID]?.definition
                    let alias = target.flatMap { ProxyHealth.aggregate($0, board: backend.checks) }
                    if passingOnly && (!check.isPassing || (alias.map { $0.status != .passing } ?? false)) { return nil }
                    var checks = [checkJSON(proxy, check, configuration, snapshot)]
                    if let target, let alias {
                        checks.append(CheckJSON.alias(proxyServiceID: proxy.proxyServiceID, proxyServiceName: proxy.proxyServiceName,
                                                      target: target, status: alias.status, output: alias.output,
                                                      node: configuration.nodeName, index: snapshot.index))
                    }
                    return .object([
                        ("Node", node(backend, configuration, snapshot)),
                        ("Service", service(proxy, snapshot, configuration, backend)),
                        ("Checks", .array(checks)),
                    ])
                })
            },
            perService(.prefix("/v1/catalog/connect/"), backend) { request, snapshot, authorizer, configuration throws(APIError) in
                let name = request.pathSuffix
                try ACLCheck.require(authorizer.discoveryRead(name))
                if let catalog = snapshot.fleetCatalog { return .array(catalog.proxies(for: name).map(FleetCatalogJSON.catalogService)) }
                return .array(connectProxies(for: name, snapshot).map { proxy in
                    catalogService(proxy, snapshot, configuration, backend)
                })
            },
            services(backend),
        ]
    }

    /// `/v1/catalog/services`: on a single host from local state; in fleet mode read from etcd
    /// (this agent keeps only the services it uses), blocking by polling etcd's revision.
    static func services(_ backend: any AgentBackend) -> Route {
        let local = blocking(.exact("/v1/catalog/services"), backend) { _, snapshot, authorizer, _ throws(APIError) in
            try ACLCheck.require(authorizer.mayList)
            var names: [String: Set<String>] = [:]
            for service in snapshot.services.values where authorizer.serviceRead(service.definition.name) {
                names[service.definition.name, default: []].formUnion(service.definition.tags ?? [])
            }
            for proxy in snapshot.proxies.values where authorizer.serviceRead(proxy.proxyServiceName) {
                names[proxy.proxyServiceName, default: []].formUnion([])
            }
            return .sortedObject(names.mapValues { .array($0.sorted().map { .string($0) }) })
        }
        return Route(local.pattern, methods: local.methods, fast: { request, later throws(APIError) in
            backend.state.shared ? nil : try local.fast?(request, later)
        }) { request throws(APIError) in
            guard backend.state.shared else { return try await local.handler(request) }
            return try await fleetServices(request, backend)
        }
    }

    static func fleetServices(_ request: APIRequest, _ backend: any AgentBackend) async throws(APIError) -> APIResponse {
        let options = try QueryOptions(request, backend: backend)
        let authorizer = try ACLCheck.authorizer(options.token, backend: backend, snapshot: backend.state.snapshot)
        try ACLCheck.require(authorizer.mayList)
        let deadline = ContinuousClock.now + BlockingQuery.effectiveWait(requested: options.wait)
        while true {
            let read: (services: [String: Set<String>], revision: Int64)?
            do {
                read = try await backend.fleetCatalogServices()
            } catch {
                throw .internalError("cannot read the fleet's catalog from etcd: \(error)")
            }
            guard let read else { throw .internalError("no fleet") }
            let index = UInt64(max(1, read.revision))
            if options.blockingIndex > 0, index <= options.blockingIndex, ContinuousClock.now < deadline, !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            let visible = read.services.filter { authorizer.serviceRead($0.key) }
            var response = APIResponse.json(.sortedObject(visible.mapValues { .array($0.sorted().map { .string($0) }) }),
                                            pretty: options.pretty, index: index)
            response.headers += ConnectCARoutes.leaderHeaders
            return response
        }
    }

    /// A per-service query (`/v1/health/connect/:service`, `/v1/catalog/connect/:service`): in
    /// fleet mode the first query of a service this agent does not keep yet starts keeping it
    /// (from a task, waiting until it is listed); later ones answer on the fast path.
    static func perService(_ pattern: Route.Pattern, _ backend: any AgentBackend, render: @escaping Render) -> Route {
        Route(pattern, methods: ["GET"], fast: { request, later throws(APIError) in
            guard backend.fleetUses(service: request.pathSuffix) else { return nil }
            return try query(request, backend, render).fast(later)
        }) { request throws(APIError) in
            if !backend.fleetUses(service: request.pathSuffix) {
                // Only for a caller allowed to read it: starting a watch costs etcd and the agent.
                let options = try QueryOptions(request, backend: backend)
                let authorizer = try ACLCheck.authorizer(options.token, backend: backend, snapshot: backend.state.snapshot)
                try ACLCheck.require(authorizer.discoveryRead(request.pathSuffix))
                await backend.fleetUse(service: request.pathSuffix)
            }
            return await try query(request, backend, render).awaited()
        }
    }

    typealias Render = @Sendable (APIRequest, StateSnapshot, Authorizer, AgentConfiguration) throws(APIError) -> JSONValue

    /// A GET route answering `render` over the current state, blocking on `?index=` like Consul's
    /// catalog, on the fast path (parked) or the async one.
    static func blocking(_ pattern: Route.Pattern, _ backend: any AgentBackend, render: @escaping Render) -> Route {
        .blocking(pattern) { request throws(APIError) in try query(request, backend, render) }
    }

    struct Rendered: BlockingResult {
        var body: JSONValue
        var resourceIndex: UInt64
        var contentHash: String { "" }
    }

    static func query(_ request: APIRequest, _ backend: any AgentBackend, _ render: @escaping Render) throws(APIError) -> BlockingAnswer<Rendered> {
        let options = try QueryOptions(request, backend: backend)
        let state = backend.state
        let (token, pretty) = (options.token, options.pretty)
        // Fleet mode: the catalog's own index (etcd's revision of its last change).
        let fleet = state.shared
        return BlockingAnswer(
            watch: fleet ? state.catalogWatch : state.watch, condition: options.condition, wait: BlockingQuery.effectiveWait(requested: options.wait),
            evaluate: { () throws(APIError) -> Rendered in
                let snapshot = state.snapshot
                let authorizer = try ACLCheck.authorizer(token, backend: backend, snapshot: snapshot)
                return Rendered(body: try render(request, snapshot, authorizer, backend.configuration()), resourceIndex: snapshot.fleetCatalog?.index ?? snapshot.index)
            },
            respond: { rendered in
                var response = APIResponse.json(rendered.body, pretty: pretty, index: rendered.resourceIndex)
                response.headers += ConnectCARoutes.leaderHeaders
                return response
            })
    }

    /// Managed proxies whose target service is named `name`, by proxy ID.
    static func connectProxies(for name: String, _ snapshot: StateSnapshot) -> [ManagedProxy] {
        snapshot.proxies.values.filter { $0.targetServiceName == name }.sorted { $0.proxyServiceID < $1.proxyServiceID }
    }

    /// This node's address: `bind_addr`, or loopback when that is a wildcard.
    static func nodeAddress(_ configuration: AgentConfiguration) -> String {
        ["0.0.0.0", "::", ""].contains(configuration.bindAddr) ? "127.0.0.1" : configuration.bindAddr
    }

    /// This node's identity fields, shared by the health and catalog shapes.
    static func nodeFields(_ backend: any AgentBackend, _ configuration: AgentConfiguration) -> [(String, JSONValue)] {
        let address = nodeAddress(configuration)
        return [
            ("ID", .string(backend.nodeID)),
            ("Node", .string(configuration.nodeName)),
            ("Address", .string(address)),
            ("Datacenter", .string(configuration.datacenter)),
            ("TaggedAddresses", .object([("lan", .string(address)), ("wan", .string(address))])),
        ]
    }

    static func node(_ backend: any AgentBackend, _ configuration: AgentConfiguration, _ snapshot: StateSnapshot) -> JSONValue {
        .object(nodeFields(backend, configuration) + [
            ("Meta", .object([("consul-network-segment", .string(""))])),
            ("CreateIndex", .int(1)),
            ("ModifyIndex", .int(Int64(snapshot.index))),
        ])
    }

    static func service(_ proxy: ManagedProxy, _ snapshot: StateSnapshot, _ configuration: AgentConfiguration,
                        _ backend: any AgentBackend) -> JSONValue {
        guard let target = snapshot.services[proxy.targetServiceID] else { return .null }
        let rendered = AgentServiceJSON.proxyService(proxy, target: target.definition, configuration: configuration, style: .list)
        var members = rendered.objectMembers ?? []
        // Consul's health answer: `Meta` null for a proxy without meta, `Connect` empty.
        if let meta = members.firstIndex(where: { $0.0 == "Meta" }) { members[meta].1 = .null }
        members += [
            ("Connect", .object([])),
            ("CreateIndex", .int(1)),
            ("ModifyIndex", .int(Int64(snapshot.index))),
        ]
        return .object(members)
    }

    /// `/v1/catalog/connect/:service` entries: Consul's CatalogService shape.
    static func catalogService(_ proxy: ManagedProxy, _ snapshot: StateSnapshot, _ configuration: AgentConfiguration,
                               _ backend: any AgentBackend) -> JSONValue {
        let service = service(proxy, snapshot, configuration, backend)
        return .object(nodeFields(backend, configuration) + [
            ("NodeMeta", .object([("consul-network-segment", .string(""))])),
            ("ServiceKind", .string("connect-proxy")),
            ("ServiceID", service["ID"] ?? .null),
            ("ServiceName", service["Service"] ?? .null),
            ("ServiceTags", .array([])),
            ("ServiceAddress", service["Address"] ?? .string("")),
            ("ServiceMeta", .object([])),
            ("ServicePort", service["Port"] ?? .int(0)),
            ("ServiceEnableTagOverride", .bool(false)),
            ("ServiceProxyDestination", .string(proxy.targetServiceName)),
            ("ServiceProxy", service["Proxy"] ?? .null),
            ("ServiceConnect", .object([("Native", .bool(false)), ("Proxy", .null)])),
            ("CreateIndex", .int(1)),
            ("ModifyIndex", .int(Int64(snapshot.index))),
        ])
    }

    static func checkJSON(_ proxy: ManagedProxy, _ check: CheckStatus, _ configuration: AgentConfiguration,
                          _ snapshot: StateSnapshot) -> JSONValue {
        .object([
            ("Node", .string(configuration.nodeName)),
            ("CheckID", .string("service:\(proxy.proxyServiceID)")),
            ("Name", .string(proxy.request.sidecar == nil ? "Connect Proxy Listening" : "Connect Sidecar Listening")),
            ("Status", .string(check.status)),
            ("Notes", .string("")),
            ("Output", .string(check.output)),
            ("ServiceID", .string(proxy.proxyServiceID)),
            ("ServiceName", .string(proxy.proxyServiceName)),
            ("ServiceTags", .array([])),
            ("Definition", .object([])),
            ("CreateIndex", .int(1)),
            ("ModifyIndex", .int(Int64(snapshot.index))),
        ])
    }
}
