// Health checks: GET /v1/agent/checks; PUT /v1/agent/check/pass|warn|fail|update/:id (TTL
// checks); GET /v1/health/checks/:service and /v1/health/service/:service (`?passing`),
// index-blocking like the rest of the health API.

import AgentConfig
import AgentState
import Authorization
import ConnectdCore

enum HealthCheckRoutes {
    static func routes(_ backend: any AgentBackend) -> [Route] {
        [
            Route(.exact("/v1/agent/checks"), methods: ["GET"]) { request throws(APIError) in
                let configuration = backend.configuration()
                let options = try QueryOptions(request, configuration: configuration)
                let snapshot = backend.state.snapshot
                let authorizer = try ACLCheck.authorizer(options.token, backend: backend, snapshot: snapshot)
                var members: [String: JSONValue] = [:]
                for (check, service) in defined(snapshot, configuration) where visible(check, service, authorizer, configuration) {
                    members[check.id] = CheckJSON.health(check, backend.checks.result(of: check.id), service: service,
                                                         node: configuration.nodeName, index: snapshot.index)
                }
                for proxy in snapshot.proxies.values where authorizer.serviceRead(proxy.proxyServiceName) {
                    members["service:\(proxy.proxyServiceID)"] = CatalogRoutes.checkJSON(proxy, backend.health.status(of: proxy.proxyServiceID),
                                                                                         configuration, snapshot)
                }
                return .json(.sortedObject(members), pretty: options.pretty)
            },
            update(.prefix("/v1/agent/check/pass/"), backend) { request, _ throws(APIError) in (.passing, request.queryValue("note") ?? "") },
            update(.prefix("/v1/agent/check/warn/"), backend) { request, _ throws(APIError) in (.warning, request.queryValue("note") ?? "") },
            update(.prefix("/v1/agent/check/fail/"), backend) { request, _ throws(APIError) in (.critical, request.queryValue("note") ?? "") },
            update(.prefix("/v1/agent/check/update/"), backend) { request, _ throws(APIError) in
                let document = try JSONBody.parse(request.body)
                let sink = ProblemSink(file: nil)
                let reader = try JSONBody.object(document, sink: sink)
                let status = reader.string("status") ?? ""
                let output = reader.string("output") ?? ""
                guard let health = CheckHealth(rawValue: status) else { throw APIError.badRequest("Invalid check status: \"\(status)\"") }
                return (health, output)
            },
            Route(.exact("/v1/agent/check/register"), methods: ["PUT"]) { request throws(APIError) in
                try await register(request, backend)
            },
            Route(.prefix("/v1/agent/check/deregister/"), methods: ["PUT"]) { request throws(APIError) in
                try await deregister(request, backend)
            },
            CatalogRoutes.blocking(.prefix("/v1/health/checks/"), backend) { request, snapshot, authorizer, configuration throws(APIError) in
                let name = request.pathSuffix
                try ACLCheck.require(authorizer.discoveryRead(name))
                var checks: [JSONValue] = []
                for (check, service) in defined(snapshot, configuration) where service?.name == name {
                    checks.append(CheckJSON.health(check, backend.checks.result(of: check.id), service: service,
                                                   node: configuration.nodeName, index: snapshot.index))
                }
                for proxy in snapshot.proxies.values.sorted(by: { $0.proxyServiceID < $1.proxyServiceID }) where proxy.proxyServiceName == name {
                    checks.append(CatalogRoutes.checkJSON(proxy, backend.health.status(of: proxy.proxyServiceID), configuration, snapshot))
                }
                return .array(checks)
            },
            CatalogRoutes.blocking(.prefix("/v1/health/service/"), backend) { request, snapshot, authorizer, configuration throws(APIError) in
                let name = request.pathSuffix
                try ACLCheck.require(authorizer.discoveryRead(name))
                let passingOnly = request.hasQuery("passing")
                let services = snapshot.services.values.map(\.definition).filter { $0.name == name }.sorted { $0.id < $1.id }
                return .array(services.compactMap { service -> JSONValue? in
                    let checks = service.checks.map { check in (check, backend.checks.result(of: check.id)) }
                    if passingOnly && checks.contains(where: { ($0.1?.status ?? $0.0.initialStatus) != .passing }) { return nil }
                    return .object([
                        ("Node", CatalogRoutes.node(backend, configuration, snapshot)),
                        ("Service", serviceJSON(service, index: snapshot.index)),
                        ("Checks", .array(checks.map { CheckJSON.health($0.0, $0.1, service: service, node: configuration.nodeName,
                                                                        index: snapshot.index) })),
                    ])
                })
            },
        ]
    }

    /// Every defined check with its service: the node's (config files) and each service's.
    static func defined(_ snapshot: StateSnapshot, _ configuration: AgentConfiguration) -> [(CheckDefinition, ServiceDefinition?)] {
        var checks: [(CheckDefinition, ServiceDefinition?)] = configuration.checks.map { check in
            (check, check.serviceID.flatMap { snapshot.services[$0]?.definition })
        }
        for service in snapshot.services.values.map(\.definition).sorted(by: { $0.id < $1.id }) {
            checks += service.checks.map { ($0, service) }
        }
        for check in snapshot.checks.values.sorted(by: { $0.id < $1.id }) {
            checks.append((check, check.serviceID.flatMap { snapshot.services[$0]?.definition }))
        }
        return checks
    }

    static func visible(_ check: CheckDefinition, _ service: ServiceDefinition?, _ authorizer: Authorizer,
                        _ configuration: AgentConfiguration) -> Bool {
        if let service { return authorizer.serviceRead(service.name) }
        return authorizer.agentRead(configuration.nodeName)
    }

    /// A TTL check update: `status` gives the new state and output; ACL `service:write` on the
    /// check's service (`agent:write` for a check of the node).
    static func update(_ pattern: Route.Pattern, _ backend: any AgentBackend,
                       status: @escaping @Sendable (APIRequest, AgentConfiguration) throws(APIError) -> (CheckHealth, String)) -> Route {
        Route(pattern, methods: ["PUT"]) { request throws(APIError) in
            let configuration = backend.configuration()
            let snapshot = backend.state.snapshot
            let id = request.pathSuffix
            let authorizer = try ACLCheck.authorizer(ACLCheck.token(request, configuration), backend: backend, snapshot: snapshot)
            guard let (check, service) = defined(snapshot, configuration).first(where: { $0.0.id == id }) else {
                if !authorizer.seesEverything { throw APIError.permissionDenied }
                throw APIError.internalError("CheckID \"\(id)\" does not have associated TTL")
            }
            try ACLCheck.require(service.map { authorizer.serviceWrite($0.name) } ?? authorizer.agentWrite(configuration.nodeName))
            let (health, output) = try status(request, configuration)
            // Registered a moment ago: the runner may not have picked it up yet.
            backend.checks.track(check)
            switch backend.checks.update(ttlCheck: check.id, health, output: truncated(output)) {
            case .notTTL: throw APIError.internalError("CheckID \"\(id)\" does not have associated TTL")
            case .updated(let changed): if changed { try? await backend.state.touch() }
            }
            return .empty
        }
    }

    /// `PUT /v1/agent/check/register`: Consul's body (`Name`, `CheckID`, `ServiceID`, a probe,
    /// timing); `service:write` on its service, `agent:write` for a node check.
    static func register(_ request: APIRequest, _ backend: any AgentBackend) async throws(APIError) -> APIResponse {
        let configuration = backend.configuration()
        let snapshot = backend.state.snapshot
        let authorizer = try ACLCheck.authorizer(ACLCheck.token(request, configuration), backend: backend, snapshot: snapshot)
        let document = try JSONBody.parse(request.body)
        let sink = ProblemSink(file: nil)
        let reader = try JSONBody.object(document, sink: sink)
        let decoded = CheckDefinitionDecoder.decode(reader, service: nil)
        if let problem = sink.problems.first {
            if problem.keyPath == "name" { throw APIError.badRequest("Missing check name") }
            throw APIError.badRequest("Invalid check: \(problem)")
        }
        guard let check = decoded else { throw APIError.badRequest("Missing check name") }
        let service = check.serviceID.flatMap { snapshot.services[$0]?.definition }
        try ACLCheck.require(service.map { authorizer.serviceWrite($0.name) } ?? authorizer.agentWrite(configuration.nodeName))
        if let serviceID = check.serviceID, service == nil {
            throw APIError.internalError("ServiceID \"\(serviceID)\" does not exist")
        }
        if case .script = check.probe, !configuration.enableScriptChecks {
            throw APIError.internalError(CheckSetRules.scriptsDisabled)
        }
        if let owner = defined(snapshot, configuration).first(where: { $0.0.id == check.id && snapshot.checks[check.id] == nil }) {
            throw APIError.badRequest("check ID \"\(check.id)\" is already defined by \(owner.1.map { "service \($0.id)" } ?? "a config file"); choose another ID")
        }
        do throws(StateError) {
            try await backend.state.registerCheck(check)
        } catch {
            throw APIError(error)
        }
        return .empty
    }

    /// `PUT /v1/agent/check/deregister/:id`: only checks registered through the API; an unknown
    /// ID is a 200, as in Consul.
    static func deregister(_ request: APIRequest, _ backend: any AgentBackend) async throws(APIError) -> APIResponse {
        let configuration = backend.configuration()
        let snapshot = backend.state.snapshot
        let authorizer = try ACLCheck.authorizer(ACLCheck.token(request, configuration), backend: backend, snapshot: snapshot)
        let id = request.pathSuffix
        guard let check = snapshot.checks[id] else {
            if let (_, service) = defined(snapshot, configuration).first(where: { $0.0.id == id }) {
                try ACLCheck.require(service.map { authorizer.serviceWrite($0.name) } ?? authorizer.agentWrite(configuration.nodeName))
                throw APIError.badRequest("check \"\(id)\" is part of \(service.map { "service \($0.id)'s definition" } ?? "a config file"); remove it there")
            }
            try ACLCheck.require(authorizer.agentWrite(configuration.nodeName))
            return .empty
        }
        let service = check.serviceID.flatMap { snapshot.services[$0]?.definition }
        try ACLCheck.require(service.map { authorizer.serviceWrite($0.name) } ?? authorizer.agentWrite(configuration.nodeName))
        do throws(StateError) {
            try await backend.state.deregisterCheck(id: id)
        } catch {
            throw APIError(error)
        }
        return .empty
    }

    /// Consul keeps 4 KiB of a check's output.
    static func truncated(_ output: String) -> String {
        let bytes = Array(output.utf8)
        guard bytes.count > 4096 else { return output }
        return String(decoding: bytes.prefix(4096), as: UTF8.self) + "\n...\n(captured 4096 of \(bytes.count) bytes)"
    }

    /// A regular service as `/v1/health/service` shows it (Consul's NodeService).
    static func serviceJSON(_ service: ServiceDefinition, index: UInt64) -> JSONValue {
        .object([
            ("ID", .string(service.id)),
            ("Service", .string(service.name)),
            ("Tags", .array((service.tags ?? []).map { .string($0) })),
            ("Address", .string(service.address)),
            ("Meta", service.meta.map { .sortedObject($0.mapValues { .string($0) }) } ?? .null),
            ("Port", .int(Int64(service.port))),
            ("Weights", AgentServiceJSON.weights(service.weights)),
            ("EnableTagOverride", .bool(service.enableTagOverride)),
            ("ProxyDestination", .string("")),
            ("Proxy", .object([])),
            ("Connect", .object([])),
            ("CreateIndex", .int(1)),
            ("ModifyIndex", .int(Int64(max(index, 1)))),
        ])
    }
}
