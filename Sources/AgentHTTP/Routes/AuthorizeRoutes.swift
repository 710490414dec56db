// POST /v1/agent/connect/authorize — called by proxies for every inbound connection; answered
// from memory (intentions index, token rules).

import AgentConfig
import Authorization
import ConnectdCore
import Synchronization

enum AuthorizeRoutes {
    static func routes(_ backend: any AgentBackend) -> [Route] {
        [
            Route(.exact("/v1/agent/connect/authorize"), methods: ["POST"], fast: { request, _ throws(APIError) in
                .response(try authorize(request, backend: backend))
            }) { request throws(APIError) in
                try authorize(request, backend: backend)
            },
        ]
    }

    /// Encoded answers by decision: there are few distinct ones (one per intention, plus the default).
    static let answers = AnswerCache()

    static func authorize(_ request: APIRequest, backend: any AgentBackend) throws(APIError) -> APIResponse {
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
        let result = AuthorizeDecision.decide(target: target, namespace: client.namespace, service: client.service,
                                              intentions: backend.intentions, acl: configuration.acl)
        var response = APIResponse.encodedJSON(answers.body(result, pretty: configuration.alwaysPretty || request.hasQuery("pretty")))
        response.headers += ConnectCARoutes.cacheHeaders(hit: true)
        return response
    }
}

/// The encoded JSON of authorize answers, kept so a hot decision is not encoded per request.
final class AnswerCache: Sendable {
    private let bodies = Mutex<[String: [UInt8]]>([:])

    func body(_ result: AuthorizeResult, pretty: Bool) -> [UInt8] {
        let key = "\(result.authorized ? 1 : 0)\(pretty ? 1 : 0)\(result.reason)"
        if let cached = bodies.withLock({ $0[key] }) { return cached }
        let encoded = Array(JSONValue.object([("Authorized", .bool(result.authorized)), ("Reason", .string(result.reason))])
            .encoded(pretty: pretty).utf8)
        bodies.withLock { bodies in
            if bodies.count > 4096 { bodies.removeAll() }
            bodies[key] = encoded
        }
        return encoded
    }
}
