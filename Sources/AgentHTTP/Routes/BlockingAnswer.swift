// Answers a blocking query (`?index=` or `?hash=`) on either path with one evaluation: parked by
// callback on the fast path (no task per waiter), or awaited in the async responder.

import AgentState
import AgentStore
import ConnectdCore

/// A blocking query as a route describes it: the watch to park on, what the client has, how long
/// it may wait, how to evaluate the state now, and how an evaluation becomes a response.
struct BlockingAnswer<Result: BlockingResult & Sendable>: Sendable {
    var watch: IndexWatch
    var condition: BlockingCondition
    var wait: Duration
    var evaluate: @Sendable () throws(APIError) -> Result
    var respond: @Sendable (Result) throws(APIError) -> APIResponse

    /// Answers now when nothing needs waiting; otherwise parks and answers through `later`.
    func fast(_ later: LaterAnswer) -> FastAnswer {
        let respond = respond
        switch BlockingQuery.start(watch: watch, condition: condition, wait: wait, evaluate: erasedEvaluate,
                                   deliver: { later(Self.response($0, respond)) }) {
        case .ready(let result): return .response(Self.response(result, respond))
        case .parked(let query): return .parked(query)
        }
    }

    /// The same answer from a task, which suspends while the query is parked.
    func awaited() async -> APIResponse {
        do {
            return Self.response(.success(try await BlockingQuery.run(watch: watch, condition: condition, wait: wait,
                                                                      evaluate: erasedEvaluate)), respond)
        } catch {
            return Self.response(.failure(error), respond)
        }
    }

    private var erasedEvaluate: @Sendable () throws -> Result {
        let evaluate = evaluate
        return { () throws -> Result in try evaluate() }
    }

    private static func response(_ result: Swift.Result<Result, any Error>,
                                 _ respond: (Result) throws(APIError) -> APIResponse) -> APIResponse {
        do {
            return try respond(result.get())
        } catch let error as APIError {
            return .error(error)
        } catch {
            return .error(.internalError("\(error)"))
        }
    }
}

extension Route {
    /// A GET route answered by a blocking query: parked on the fast path, awaited when a request
    /// must go through the async responder (pipelined behind one already there).
    static func blocking<Result: BlockingResult & Sendable>(
        _ pattern: Pattern, query: @escaping @Sendable (APIRequest) throws(APIError) -> BlockingAnswer<Result>
    ) -> Route {
        Route(pattern, methods: ["GET"], fast: { request, later throws(APIError) in
            try query(request).fast(later)
        }) { request throws(APIError) in
            await try query(request).awaited()
        }
    }
}
