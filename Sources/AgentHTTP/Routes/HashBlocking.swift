// Hash-based blocking for agent-local endpoints: answer when the body's hash differs from `?hash=`.

import AgentState
import Authorization
import ConnectdCore

/// A rendered body with its content hash, as the blocking loop sees it.
struct HashedBody: BlockingResult {
    var bytes: [UInt8]
    var contentHash: String
    var resourceIndex: UInt64
}

enum HashBlocking {
    /// The answer when it needs no waiting (no `?hash=`, or a hash that differs); nil otherwise.
    static func respondNow(_ request: APIRequest, backend: any AgentBackend, cache: RenderCache,
                           render: (StateSnapshot, Authorizer) throws(APIError) -> (JSONValue, String)) throws(APIError) -> APIResponse? {
        let options = try QueryOptions(request, configuration: backend.configuration(), useHash: true)
        let snapshot = backend.state.snapshot
        let authorizer = try ACLCheck.authorizer(options.token, backend: backend, snapshot: snapshot)
        let (bytes, hash) = try cache.body(key: request.path + "\u{0}" + options.token, index: snapshot.index,
                                           pretty: options.pretty) { () throws(APIError) in try render(snapshot, authorizer) }
        if case .hash(let wanted) = options.condition, wanted == hash { return nil }
        return .encodedJSON(bytes, contentHash: hash)
    }

    /// Renders with `render` until its hash differs from the client's (or the wait ends); every
    /// render reads a fresh snapshot, so a removal while waiting answers the render's 404.
    static func respond(_ request: APIRequest, backend: any AgentBackend, cache: RenderCache,
                        render: @escaping (StateSnapshot, Authorizer) throws(APIError) -> (JSONValue, String)) async throws(APIError) -> APIResponse {
        let options = try QueryOptions(request, configuration: backend.configuration(), useHash: true)
        let state = backend.state
        do {
            let result = try await BlockingQuery.run(
                watch: state.watch, condition: options.condition, wait: BlockingQuery.effectiveWait(requested: options.wait)
            ) { () throws(APIError) -> HashedBody in
                let snapshot = state.snapshot
                let authorizer = try ACLCheck.authorizer(options.token, backend: backend, snapshot: snapshot)
                let (bytes, hash) = try cache.body(key: request.path + "\u{0}" + options.token, index: snapshot.index,
                                                   pretty: options.pretty) { () throws(APIError) in
                    try render(snapshot, authorizer)
                }
                return HashedBody(bytes: bytes, contentHash: hash, resourceIndex: snapshot.index)
            }
            return .encodedJSON(result.bytes, contentHash: result.contentHash)
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.internalError("\(error)")
        }
    }
}
