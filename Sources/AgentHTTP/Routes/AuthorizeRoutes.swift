// POST /v1/agent/connect/authorize — called by proxies for every inbound connection; answered
// from memory (intentions index, token rules).

import AgentConfig
import Authorization
import ConnectdCore
import CoreMetrics
import Synchronization
import Telemetry

enum AuthorizeRoutes {
    static func routes(_ backend: any AgentBackend) -> [Route] {
        let decisions = Decisions(factory: backend.metrics.factory)
        return [
            Route(.exact("/v1/agent/connect/authorize"), methods: ["POST"], fast: { request, _ throws(APIError) in
                .response(try authorize(request, backend: backend, decisions: decisions))
            }) { request throws(APIError) in
                try authorize(request, backend: backend, decisions: decisions)
            },
        ]
    }

    /// `connectd_authorize_decisions_total` by result.
    struct Decisions: Sendable {
        let allowed: CoreMetrics.Counter
        let denied: CoreMetrics.Counter

        init(factory: any MetricsFactory) {
            allowed = CoreMetrics.Counter(label: AgentMetric.authorizeDecisions.name, dimensions: [("result", "allowed")], factory: factory)
            denied = CoreMetrics.Counter(label: AgentMetric.authorizeDecisions.name, dimensions: [("result", "denied")], factory: factory)
        }
    }

    /// Encoded answers by decision: there are few distinct ones (one per intention, plus the default).
    static let answers = AnswerCache()

    static func authorize(_ request: APIRequest, backend: any AgentBackend, decisions: Decisions) throws(APIError) -> APIResponse {
        let configuration = backend.configuration()
        let document: JSONValue
        do {
            document = try JSONBody.parse(request.body)
        } catch {
            // Consul's authorize wraps decode failures in its BadRequestError (`Bad request: ...`).
            throw APIError.badRequestReason(error.message)
        }
        let sink = ProblemSink(file: nil)
        let reader = try JSONBody.object(document, sink: sink)
        let target = reader.string("target") ?? ""
        let uri = reader.string("client_cert_uri") ?? ""
        // Accepted with or without colons; like Consul, not checked against anything.
        _ = reader.string("client_cert_serial")
        if let problem = sink.problems.first { throw APIError.badRequestReason("Request decode failed: \(problem.message)") }
        let client: (namespace: String, service: String)
        do throws(AuthorizeDecision.InputError) {
            client = try AuthorizeDecision.validate(target: target, clientCertURI: uri)
        } catch {
            throw APIError.badRequestReason(error.reason)
        }
        // Input is validated before the token is checked, as in Consul.
        try ACLCheck.require(try ACLCheck.authorizer(ACLCheck.token(request, configuration), backend: backend,
                                                     configuration: configuration).authorize(target: target))
        let pretty = configuration.alwaysPretty || request.hasQuery("pretty")
        let intentions = backend.state.read(\.intentions)
        let (body, authorized) = answers.body(target: target, namespace: client.namespace, service: client.service, pretty: pretty,
                                generation: AnswerCache.Generation(intentions: intentions.index, acl: configuration.acl)) {
            AuthorizeDecision.decide(target: target, namespace: client.namespace, service: client.service,
                                     intentions: intentions, acl: configuration.acl)
        }
        (authorized ? decisions.allowed : decisions.denied).increment()
        var response = APIResponse.encodedJSON(body)
        response.headers += ConnectCARoutes.cacheHeaders(hit: true)
        return response
    }
}

/// Encoded authorize answers by (target, client namespace, client service): a hot pair costs a
/// dictionary lookup. Every intention change moves the intentions index and every reload may
/// change the ACL settings; either starts a new generation, which empties the cache.
final class AnswerCache: Sendable {
    struct Generation: Equatable {
        var intentions: UInt64
        var aclEnabled: Bool
        var defaultAllow: Bool

        init(intentions: UInt64, acl: ACLSettings) {
            self.intentions = intentions
            aclEnabled = acl.enabled
            defaultAllow = acl.defaultAllow
        }
    }

    private struct State {
        var generation: Generation?
        var bodies: [String: (body: [UInt8], authorized: Bool)] = [:]
    }

    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int = 8192) { self.capacity = capacity }

    func body(target: String, namespace: String, service: String, pretty: Bool, generation: Generation,
              decide: () -> AuthorizeResult) -> (body: [UInt8], authorized: Bool) {
        let key = "\(pretty ? "p" : "c")\(target)\u{0}\(namespace)\u{0}\(service)"
        if let cached = state.withLock({ $0.generation == generation ? $0.bodies[key] : nil }) { return cached }
        let result = decide()
        let encoded = Array(JSONValue.object([("Authorized", .bool(result.authorized)), ("Reason", .string(result.reason))])
            .encoded(pretty: pretty).utf8)
        state.withLock { state in
            if state.generation != generation || state.bodies.count >= capacity {
                state.generation = generation
                state.bodies.removeAll(keepingCapacity: true)
            }
            state.bodies[key] = (encoded, result.authorized)
        }
        return (encoded, result.authorized)
    }
}
