// Hash-based blocking for agent-local endpoints: answer when the body's hash differs from `?hash=`.

import AgentState
import AgentStore
import Authorization
import ConnectdCore

/// A rendered body with its content hash, as the blocking loop sees it.
struct HashedBody: BlockingResult {
    var bytes: [UInt8]
    var contentHash: String
    var resourceIndex: UInt64
}

enum HashBlocking {
    typealias Render = @Sendable (StateSnapshot, Authorizer) throws(APIError) -> (JSONValue, String)

    /// The blocking query for `request`: every evaluation reads a fresh snapshot (so a removal
    /// while waiting answers the render's 404), and all waiters woken by one change share one
    /// rendering through `cache`.
    static func query(_ request: APIRequest, backend: any AgentBackend, cache: RenderCache,
                      render: @escaping Render) throws(APIError) -> BlockingAnswer<HashedBody> {
        let options = try QueryOptions(request, backend: backend, useHash: true)
        let state = backend.state
        let key = request.path + "\u{0}" + options.token
        let (token, pretty) = (options.token, options.pretty)
        return BlockingAnswer(
            watch: state.watch, condition: options.condition, wait: BlockingQuery.effectiveWait(requested: options.wait),
            evaluate: { () throws(APIError) -> HashedBody in
                // A cached rendering needs only the index (and the token checked), not a copy
                // of the whole snapshot.
                let index = state.read(\.index)
                if let hit = cache.cached(key: key, index: index, pretty: pretty) {
                    _ = try ACLCheck.authorizer(token, backend: backend)
                    return HashedBody(bytes: hit.bytes, contentHash: hit.hash, resourceIndex: index)
                }
                let snapshot = state.snapshot
                let authorizer = try ACLCheck.authorizer(token, backend: backend, snapshot: snapshot)
                let (bytes, hash) = try cache.body(key: key, index: snapshot.index, pretty: pretty) { () throws(APIError) in
                    try render(snapshot, authorizer)
                }
                return HashedBody(bytes: bytes, contentHash: hash, resourceIndex: snapshot.index)
            },
            respond: { body in .encodedJSON(body.bytes, contentHash: body.contentHash) })
    }

    /// A route answering `render` with hash blocking on both paths.
    static func route(_ pattern: Route.Pattern, backend: any AgentBackend, cache: RenderCache,
                      render: @escaping @Sendable (APIRequest, StateSnapshot, Authorizer) throws(APIError) -> (JSONValue, String)) -> Route {
        .blocking(pattern) { request throws(APIError) in
            try query(request, backend: backend, cache: cache) { snapshot, authorizer throws(APIError) in
                try render(request, snapshot, authorizer)
            }
        }
    }
}
