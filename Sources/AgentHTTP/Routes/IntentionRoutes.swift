// /v1/connect/intentions: list, create, read, update, delete, match and check.

import AgentConfig
import AgentState
import AgentStore
import Authorization
import ConnectdCore

enum IntentionRoutes {
    static func routes(_ backend: any AgentBackend) -> [Route] {
        [
            Route(.exact("/v1/connect/intentions"), methods: ["GET", "POST"]) { request throws(APIError) in
                request.method == "GET" ? try list(request, backend) : try await create(request, backend)
            },
            .blocking(.exact("/v1/connect/intentions/match")) { request throws(APIError) in try match(request, backend) },
            Route(.exact("/v1/connect/intentions/check"), methods: ["GET"]) { request throws(APIError) in
                try check(request, backend)
            },
            Route(.prefix("/v1/connect/intentions/"), methods: ["GET", "PUT", "DELETE"]) { request throws(APIError) in
                try await specific(request, backend)
            },
        ]
    }

    static func list(_ request: APIRequest, _ backend: any AgentBackend) throws(APIError) -> APIResponse {
        let options = try QueryOptions(request, backend: backend)
        let authorizer = try ACLCheck.authorizer(options.token, backend: backend)
        try ACLCheck.require(authorizer.mayList)
        let intentions = backend.state.snapshot.intentions
        let visible = intentions.list().filter { authorizer.intentionRead($0.destinationName) }
        var response = APIResponse.json(.array(visible.map(\.apiJSON)), pretty: options.pretty, index: intentions.index)
        response.headers += ConnectCARoutes.leaderHeaders
        return response
    }

    static func create(_ request: APIRequest, _ backend: any AgentBackend) async throws(APIError) -> APIResponse {
        let configuration = backend.configuration()
        let authorizer = try ACLCheck.authorizer(ACLCheck.token(request, configuration), backend: backend)
        let input = try decode(request.body)
        try ACLCheck.require(authorizer.intentionWrite(input.destinationName))
        let intention: Intention
        do throws(StateError) {
            intention = try await backend.state.createIntention(input)
        } catch {
            throw apiError(error)
        }
        return .json(.object([("ID", .string(intention.id))]), pretty: configuration.alwaysPretty || request.hasQuery("pretty"))
    }

    static func specific(_ request: APIRequest, _ backend: any AgentBackend) async throws(APIError) -> APIResponse {
        let id = request.pathSuffix
        let configuration = backend.configuration()
        let options = try QueryOptions(request, configuration: configuration)
        let authorizer = try ACLCheck.authorizer(options.token, backend: backend)
        guard let existing = backend.state.snapshot.intentions.get(id) else {
            if request.method == "PUT" || request.method == "DELETE" { try ACLCheck.require(authorizer.seesEverything) }
            throw ACLCheck.notFound(request.method == "GET" ? "Intention not found"
                : "Cannot \(request.method == "PUT" ? "update" : "delete") non-existent intention: '\(id)'", for: authorizer)
        }
        switch request.method {
        case "GET":
            try ACLCheck.require(authorizer.intentionRead(existing.destinationName))
            var response = APIResponse.json(existing.apiJSON, pretty: options.pretty, index: existing.modifyIndex)
            response.headers += ConnectCARoutes.leaderHeaders
            return response
        case "PUT":
            var input = try decode(request.body)
            if input.sourceName.isEmpty && input.destinationName.isEmpty && input.action.isEmpty {
                input = IntentionInput(existing)
            }
            try ACLCheck.require(authorizer.intentionWrite(existing.destinationName) && authorizer.intentionWrite(input.destinationName))
            do throws(StateError) {
                try await backend.state.updateIntention(id, input)
            } catch {
                throw apiError(error)
            }
            return .empty
        default:
            try ACLCheck.require(authorizer.intentionWrite(existing.destinationName))
            do throws(StateError) {
                try await backend.state.deleteIntention(id)
            } catch {
                throw apiError(error)
            }
            return .json(.bool(true), pretty: false)
        }
    }

    /// `?by=source|destination&name=…`, blocking on the intentions' index (`?index=`), as in
    /// Consul: a proxy parks here to learn at once that its authorize answers may have changed.
    static func match(_ request: APIRequest, _ backend: any AgentBackend) throws(APIError) -> BlockingAnswer<CatalogRoutes.Rendered> {
        let options = try QueryOptions(request, backend: backend)
        let by = request.queryValue("by") ?? ""
        guard by == "source" || by == "destination" else {
            throw APIError.badRequestReason("by must be 'source' or 'destination'")
        }
        let names = request.query.filter { $0.0 == "name" }.map(\.1)
        guard !names.isEmpty else { throw APIError.badRequestReason("at least one name must be specified") }
        let (state, token, pretty) = (backend.state, options.token, options.pretty)
        // Refused before parking: a caller without the right waits for nothing.
        let authorizer = try ACLCheck.authorizer(token, backend: backend)
        for name in names { try ACLCheck.require(authorizer.intentionRead(name)) }
        return BlockingAnswer(
            watch: state.intentionsWatch, condition: options.condition, wait: BlockingQuery.effectiveWait(requested: options.wait),
            evaluate: { () throws(APIError) -> CatalogRoutes.Rendered in
                let intentions = state.snapshot.intentions
                var result: [String: JSONValue] = [:]
                for name in names {
                    let list = by == "destination" ? intentions.matches(destination: name) : intentions.matches(source: name)
                    result[name] = .array(list.map(\.apiJSON))
                }
                return CatalogRoutes.Rendered(body: .sortedObject(result), resourceIndex: intentions.index)
            },
            respond: { rendered in
                var response = APIResponse.json(rendered.body, pretty: pretty, index: rendered.resourceIndex)
                response.headers += ConnectCARoutes.leaderHeaders
                return response
            })
    }

    static func check(_ request: APIRequest, _ backend: any AgentBackend) throws(APIError) -> APIResponse {
        let configuration = backend.configuration()
        let options = try QueryOptions(request, configuration: configuration)
        let authorizer = try ACLCheck.authorizer(options.token, backend: backend)
        let source = request.queryValue("source") ?? ""
        let destination = request.queryValue("destination") ?? ""
        guard !source.isEmpty else { throw APIError.badRequestReason("required query parameter 'source' not set") }
        guard !destination.isEmpty else { throw APIError.badRequestReason("required query parameter 'destination' not set") }
        try ACLCheck.require(authorizer.serviceRead(destination))
        let result = AuthorizeDecision.decide(target: destination, namespace: "default", service: source,
                                              intentions: backend.state.snapshot.intentions, acl: configuration.acl)
        return .json(.object([("Allowed", .bool(result.authorized))]), pretty: options.pretty)
    }

    /// An intention body (any key case): SourceNS/SourceName, DestinationNS/DestinationName,
    /// SourceType, Action, Description, Meta. ID, indexes and times are ignored.
    static func decode(_ body: [UInt8]) throws(APIError) -> IntentionInput {
        let document = try JSONBody.parse(body)
        let sink = ProblemSink(file: nil)
        let reader = try JSONBody.object(document, sink: sink)
        var input = IntentionInput()
        input.sourceNS = reader.string("source_ns").flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        input.sourceName = reader.string("source_name") ?? ""
        input.destinationNS = reader.string("destination_ns").flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        input.destinationName = reader.string("destination_name") ?? ""
        input.sourceType = reader.string("source_type").flatMap { $0.isEmpty ? nil : $0 } ?? "consul"
        input.action = reader.string("action") ?? ""
        input.description = reader.string("description") ?? ""
        input.meta = reader.stringMap("meta") ?? [:]
        if let problem = sink.problems.first { throw APIError.badRequestReason("Request decode failed: \(problem.description)") }
        return input
    }

    /// The API's answer to a refused intention change: 400 for bad input, 404 for an unknown ID,
    /// 500 when the state could not be saved.
    static func apiError(_ error: StateError) -> APIError {
        switch error {
        case .intention(.invalid(let message)): APIError.badRequestReason(message)
        case .intention(.notFound(let message)): APIError.notFound(message)
        default: APIError.internalError(error.description)
        }
    }
}

extension IntentionInput {
    init(_ intention: Intention) {
        self.init()
        sourceNS = intention.sourceNS
        sourceName = intention.sourceName
        destinationNS = intention.destinationNS
        destinationName = intention.destinationName
        sourceType = intention.sourceType
        action = intention.action
        description = intention.description
        meta = intention.meta
    }
}
