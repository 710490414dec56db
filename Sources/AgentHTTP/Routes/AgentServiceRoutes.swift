// /v1/agent/services, /v1/agent/service/:id, /v1/agent/service/register, /v1/agent/service/deregister/:id.

import AgentConfig
import AgentState
import AgentStore
import Authorization
import ConnectdCore
import Logging

enum AgentServiceRoutes {
    static func routes(_ backend: any AgentBackend, cache: RenderCache, logger: Logger) -> [Route] {
        [
            Route(.exact("/v1/agent/services"), methods: ["GET"]) { request throws(APIError) in
                let configuration = backend.configuration()
                let options = try QueryOptions(request, configuration: configuration)
                let snapshot = backend.state.snapshot
                let authorizer = try ACLCheck.authorizer(options.token, backend: backend, snapshot: snapshot)
                try ACLCheck.require(authorizer.mayList)
                // No X-Consul-Index: Consul's agent endpoints other than blocking ones send none.
                return .json(listDocument(snapshot, configuration, backend.builtinProxyCommand, visible: authorizer.serviceRead),
                             pretty: options.pretty)
            },
            HashBlocking.route(.prefix("/v1/agent/service/"), backend: backend, cache: cache) { request, snapshot, authorizer throws(APIError) in
                try serviceDocument(id: request.pathSuffix, authorizer: authorizer, snapshot, backend.configuration(),
                                    backend.builtinProxyCommand)
            },
            Route(.exact("/v1/agent/service/register"), methods: ["PUT"]) { request throws(APIError) in
                try await register(request, backend: backend, logger: logger)
            },
            Route(.prefix("/v1/agent/service/deregister/"), methods: ["PUT"]) { request throws(APIError) in
                try await deregister(id: request.pathSuffix, request: request, backend: backend, logger: logger)
            },
        ]
    }

    static func listDocument(_ snapshot: StateSnapshot, _ configuration: AgentConfiguration, _ builtin: [String],
                             visible: (String) -> Bool = { _ in true }) -> JSONValue {
        var entries: [String: JSONValue] = [:]
        for (id, service) in snapshot.services where visible(service.definition.name) {
            entries[id] = AgentServiceJSON.service(service, proxy: snapshot.proxy(forTarget: id), configuration: configuration,
                                                   builtinCommand: builtin, style: .list)
        }
        for (id, proxy) in snapshot.proxies where visible(proxy.proxyServiceName) {
            guard let target = snapshot.services[proxy.targetServiceID] else { continue }
            entries[id] = AgentServiceJSON.proxyService(proxy, target: target.definition, configuration: configuration, style: .list)
        }
        return .sortedObject(entries)
    }

    /// A service, or a managed proxy in the `connect-proxy` shape (Consul 1.3+ proxies watch this).
    static func serviceDocument(id: String, authorizer: Authorizer, _ snapshot: StateSnapshot, _ configuration: AgentConfiguration,
                                _ builtin: [String]) throws(APIError) -> (JSONValue, String) {
        if let proxy = snapshot.proxies[id] {
            try ACLCheck.require(authorizer.proxyRead(proxy))
            guard let target = snapshot.services[proxy.targetServiceID] else {
                throw APIError.notFound("unknown target service ID: \(proxy.targetServiceID)")
            }
            let isProxyToken = authorizer.isToken(of: proxy)
            return AgentServiceJSON.withContentHash(
                AgentServiceJSON.proxyService(proxy, target: target.definition, configuration: configuration, style: .single,
                                              withTelemetry: isProxyToken))
        }
        guard let service = snapshot.services[id] else { throw ACLCheck.notFound("unknown service ID: \(id)", for: authorizer) }
        try ACLCheck.require(authorizer.serviceRead(service.definition.name))
        return AgentServiceJSON.withContentHash(
            AgentServiceJSON.service(service, proxy: snapshot.proxy(forTarget: id), configuration: configuration,
                                     builtinCommand: builtin, style: .single))
    }

    static func register(_ request: APIRequest, backend: any AgentBackend, logger: Logger) async throws(APIError) -> APIResponse {
        let configuration = backend.configuration()
        let authorizer = try ACLCheck.authorizer(ACLCheck.token(request, configuration), backend: backend)
        let definition = try RegistrationBody.decode(request.body)
        try ACLCheck.require(authorizer.serviceWrite(definition.name))
        // A sidecar that is only registered (its own port, or managed false) starts no process.
        if definition.managedProxy?.isSupervised == true && !configuration.allowManagedAPIRegistration {
            throw APIError.badRequestAs500("Managed proxy registration via the API is disallowed.")
        }
        if backend.state.snapshot.proxies[definition.id] != nil {
            throw APIError.badRequest("service ID \"\(definition.id)\" is a managed proxy; register the target service instead")
        }
        // Consul's fence: only `enable_script_checks` lets the API register a script check.
        if !configuration.enableScriptChecks, definition.checks.contains(where: { if case .script = $0.probe { true } else { false } }) {
            throw APIError.internalError(CheckSetRules.scriptsDisabled)
        }
        var stored = definition
        if stored.token.isEmpty, let token = TokenExtraction.token(from: request) { stored.token = token }
        do {
            // Replacing a service needs write on the name it has now, not only on the new one.
            try await backend.state.register(stored, mayChange: { authorizer.serviceWrite($0.name) })
        } catch {
            throw APIError(error)
        }
        logger.info("service registered", metadata: ["service": "\(definition.id)", "managed_proxy": "\(definition.managedProxy != nil)"])
        return .empty
    }

    static func deregister(id: String, request: APIRequest, backend: any AgentBackend, logger: Logger) async throws(APIError) -> APIResponse {
        let authorizer = try ACLCheck.authorizer(ACLCheck.token(request, backend.configuration()), backend: backend)
        let snapshot = backend.state.snapshot
        // A service's own name is checked inside the state change (below), against what is there then.
        if snapshot.services[id] == nil {
            if let proxy = snapshot.proxies[id] {
                try ACLCheck.require(authorizer.serviceWrite(proxy.targetServiceName))
            } else {
                try ACLCheck.require(authorizer.seesEverything)
            }
        }
        if snapshot.proxies[id] != nil {
            throw APIError.badRequestAs500(
                "Managed proxy service cannot be deregistered directly. Deregister the service that has a managed proxy to automatically deregister the managed proxy itself.")
        }
        do {
            if try await backend.state.deregister(serviceID: id, mayChange: { authorizer.serviceWrite($0.name) }) {
                logger.info("service deregistered", metadata: ["service": "\(id)"])
            } else {
                logger.warning("failed to deregister service: unknown service", metadata: ["service": "\(id)"])
            }
        } catch {
            throw APIError(error)
        }
        return .empty
    }
}

/// Decodes a registration body as Consul does: case-insensitive keys, unknown keys ignored.
enum RegistrationBody {
    static func decode(_ body: [UInt8]) throws(APIError) -> ServiceDefinition {
        let document = try JSONBody.parse(body)
        let sink = ProblemSink(file: nil)
        let reader = try JSONBody.object(document, sink: sink)
        let definition = ServiceDefinitionDecoder.decode(reader, origin: .api)
        if let problem = sink.problems.first {
            if problem.keyPath == "name" { throw APIError.badRequest("Missing service name") }
            if problem.keyPath.lowercased().hasPrefix("check") { throw APIError.badRequest("Invalid check: \(problem)") }
            throw APIError.badRequest("Request decode failed: \(problem)")
        }
        guard let definition else { throw APIError.badRequest("Missing service name") }
        if ["0.0.0.0", "::", "[::]"].contains(definition.address) {
            throw APIError.badRequest("Invalid service address")
        }
        return definition
    }
}
