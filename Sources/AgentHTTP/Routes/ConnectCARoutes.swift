// The CA endpoints: roots (agent and catalog paths), leaf certificates, CA configuration.

import AgentConfig
import AgentState
import AgentStore
import Authorization
import CertificateAuthority
import ConnectdCore

enum ConnectCARoutes {
    static func routes(_ backend: any AgentBackend, cache: RenderCache) -> [Route] {
        let roots: @Sendable (APIRequest) throws(APIError) -> BlockingAnswer<RootsView> = { request throws(APIError) in
            try rootsQuery(request, backend: backend, cache: cache)
        }
        return [
            .blocking(.exact("/v1/agent/connect/ca/roots"), query: roots),
            .blocking(.exact("/v1/connect/ca/roots"), query: roots),
            Route(.prefix("/v1/agent/connect/ca/leaf/"), methods: ["GET"], fast: { request, later throws(APIError) in
                try cachedLeafQuery(request, backend: backend, cache: cache)?.fast(later)
            }) { request throws(APIError) in
                try await leaf(request, backend: backend, cache: cache)
            },
            Route(.exact("/v1/connect/ca/configuration"), methods: ["GET", "PUT"]) { request throws(APIError) in
                request.method == "GET" ? try configuration(request, backend: backend) : try await updateConfiguration(request, backend: backend)
            },
        ]
    }

    /// Headers Consul sends with server-backed answers (there is no separate leader to lose).
    static let leaderHeaders = [("X-Consul-Knownleader", "true"), ("X-Consul-Lastcontact", "0")]

    static func cacheHeaders(hit: Bool) -> [(String, String)] {
        hit ? [("Age", "0"), ("X-Cache", "HIT")] : [("X-Cache", "MISS")]
    }

    /// Roots, index-blocking on the CA's roots watch.
    static func rootsQuery(_ request: APIRequest, backend: any AgentBackend, cache: RenderCache) throws(APIError) -> BlockingAnswer<RootsView> {
        let options = try QueryOptions(request, backend: backend)
        let state = backend.state
        return BlockingAnswer(watch: state.rootsWatch, condition: options.condition,
                              wait: BlockingQuery.effectiveWait(requested: options.wait),
                              evaluate: { state.read(\.ca.rootsView) },
                              respond: { view throws(APIError) in try rootsResponse(view, options: options, cache: cache) })
    }

    static func rootsResponse(_ view: RootsView, options: QueryOptions, cache: RenderCache) throws(APIError) -> APIResponse {
        let (bytes, _) = try cache.body(key: "\u{1}ca-roots", index: view.index, pretty: options.pretty) { () throws(APIError) in
            (view.apiJSON, "")
        }
        var response = APIResponse.encodedJSON(bytes, index: view.index)
        response.headers += leaderHeaders + cacheHeaders(hit: options.condition == .none || view.index > options.blockingIndex)
        return response
    }

    /// A cached leaf, index-blocking on its entry's watch (renewal, re-issue); nil for a miss,
    /// which issues a certificate in the async responder.
    static func cachedLeafQuery(_ request: APIRequest, backend: any AgentBackend, cache: RenderCache) throws(APIError) -> BlockingAnswer<IssuedCert>? {
        let (service, options) = try leafRequest(request, backend: backend)
        let key = LeafCache.Key(service: service, token: options.token)
        let leaves = backend.leaves
        guard let (cert, watch) = leaves.cachedWithWatch(key) else { return nil }
        // X-Cache: HIT when answered from the cache without waiting, as Consul's agent cache.
        let hit = !BlockingQuery.unchanged(cert, options.condition)
        return BlockingAnswer(watch: watch, condition: options.condition, wait: BlockingQuery.effectiveWait(requested: options.wait),
                              evaluate: { leaves.current(key) ?? cert },
                              respond: { current throws(APIError) in
                                  try leafResponse(current, service: service, options: options, hit: hit, cache: cache)
                              })
    }

    /// The service name and query options of a leaf request, after its checks (400, 403).
    static func leafRequest(_ request: APIRequest, backend: any AgentBackend) throws(APIError) -> (String, QueryOptions) {
        let service = request.pathSuffix
        guard !service.isEmpty else {
            throw APIError.badRequestReason("missing service name: use /v1/agent/connect/ca/leaf/<service>")
        }
        guard ServiceNameText.isValidForIdentity(service) else {
            throw APIError.badRequestReason("invalid service name \"\(service)\": it cannot contain '/', whitespace or control characters")
        }
        let configuration = backend.configuration()
        let options = try QueryOptions(request, configuration: configuration)
        try ACLCheck.require(try ACLCheck.authorizer(options.token, backend: backend).leaf(service))
        return (service, options)
    }

    static func leaf(_ request: APIRequest, backend: any AgentBackend, cache: RenderCache) async throws(APIError) -> APIResponse {
        let (service, options) = try leafRequest(request, backend: backend)
        let (cert, hit): (IssuedCert, Bool)
        do throws(CAError) {
            (cert, hit) = try await backend.leaves.fetch(LeafCache.Key(service: service, token: options.token), condition: options.condition,
                                                         wait: BlockingQuery.effectiveWait(requested: options.wait))
        } catch {
            if case .unavailable(let reason) = error { throw APIError(status: 503, message: "no leaf certificate can be signed yet: \(reason)") }
            throw APIError.internalError("\(error)")
        }
        return try leafResponse(cert, service: service, options: options, hit: hit, cache: cache)
    }

    static func leafResponse(_ cert: IssuedCert, service: String, options: QueryOptions, hit: Bool,
                             cache: RenderCache) throws(APIError) -> APIResponse {
        let (bytes, _) = try cache.body(key: "\u{1}leaf\u{0}\(service)\u{0}\(options.token)", index: cert.index,
                                        pretty: options.pretty) { () throws(APIError) in (cert.apiJSON, "") }
        var response = APIResponse.encodedJSON(bytes, index: cert.index)
        response.headers += cacheHeaders(hit: hit)
        return response
    }

    static func configuration(_ request: APIRequest, backend: any AgentBackend) throws(APIError) -> APIResponse {
        let options = try QueryOptions(request, backend: backend)
        try ACLCheck.require(try ACLCheck.authorizer(options.token, backend: backend).operatorRead())
        let current = backend.state.snapshot.ca.config
        var response = APIResponse.json(current.apiJSON, pretty: options.pretty, index: current.modifyIndexValue)
        response.headers += leaderHeaders
        return response
    }

    static func updateConfiguration(_ request: APIRequest, backend: any AgentBackend) async throws(APIError) -> APIResponse {
        try ACLCheck.require(try ACLCheck.authorizer(ACLCheck.token(request, backend.configuration()), backend: backend).operatorWrite())
        let document = try JSONBody.parse(request.body)
        let sink = ProblemSink(file: nil)
        let reader = try JSONBody.object(document, sink: sink)
        let provider = reader.string("provider") ?? ""
        guard provider.isEmpty || provider == "consul" else {
            throw APIError.badRequestReason("unsupported CA provider \"\(provider)\" (connectd has the built-in \"consul\" provider only)")
        }
        var settings = CASettings()
        if let config = reader.object("config") {
            settings = CASettings.decode(config, allowGenerateKey: true)
        }
        if let problem = sink.problems.first { throw APIError.badRequestReason(problem.description) }
        if settings.clusterID != nil { throw APIError.badRequestReason("Config.ClusterID cannot be changed") }
        if backend.state.shared, settings.generateKey {
            // Fleet mode: the fleet's root rotates on its root holder, through etcd.
            guard settings.privateKey == nil else { throw APIError.badRequestReason("PrivateKey cannot be given in fleet mode") }
            do {
                _ = try await backend.rotateFleetRoot()
            } catch {
                throw APIError.badRequestReason("\(error)")
            }
            return .empty
        }
        do throws(StateError) {
            try await backend.state.applyCAConfiguration(settings)
        } catch {
            if case .ca(.invalid(let message)) = error { throw APIError.badRequestReason(message) }
            throw APIError.internalError(error.description)
        }
        return .empty
    }
}

/// Which service names can appear in a SPIFFE identity.
enum ServiceNameText {
    static func isValidForIdentity(_ name: String) -> Bool {
        !name.unicodeScalars.contains { $0 == "/" || $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7f }
    }
}
