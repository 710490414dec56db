// Routes registered like Consul's (Go ServeMux): exact paths and `/`-terminated prefixes,
// the longest match wins, each with its allowed methods.

public typealias APIHandler = @Sendable (APIRequest) async throws(APIError) -> APIResponse

import AgentState
import AgentStore

/// An answer decided on the connection's event loop without a task: either now, or parked on a
/// watch (a blocking query) and handed later to the request's ``LaterAnswer``.
public enum FastAnswer: Sendable {
    case response(APIResponse)
    case parked(ParkedQuery)
}

/// Where a parked request's answer goes; callable from any thread, at most once.
public struct LaterAnswer: Sendable {
    private let send: @Sendable (UInt64, APIResponse) -> Void
    private let ticket: UInt64

    /// `send` gets `ticket` back, so a connection can tell a current answer from a stale one.
    public init(ticket: UInt64, send: @escaping @Sendable (UInt64, APIResponse) -> Void) {
        self.send = send
        self.ticket = ticket
    }

    public func callAsFunction(_ response: APIResponse) { send(ticket, response) }
}

/// A synchronous handler, run on the connection's event loop; nil hands the request to the
/// `APIHandler` (a cache miss, work that must suspend).
public typealias FastHandler = @Sendable (APIRequest, LaterAnswer) throws(APIError) -> FastAnswer?

public struct Route: Sendable {
    public enum Pattern: Sendable, Equatable {
        case exact(String)
        /// Matches the prefix and anything after it; the rest becomes `pathSuffix`.
        case prefix(String)

        var text: String {
            switch self {
            case .exact(let path), .prefix(let path): path
            }
        }
    }

    public var pattern: Pattern
    public var methods: [String]
    public var handler: APIHandler
    public var fast: FastHandler?

    public init(_ pattern: Pattern, methods: [String], fast: FastHandler? = nil, handler: @escaping APIHandler) {
        self.pattern = pattern
        self.methods = methods
        self.fast = fast
        self.handler = handler
    }

    /// `OPTIONS,GET` as Consul writes it.
    public static func allowHeader(_ methods: [String]) -> String {
        (["OPTIONS"] + methods).joined(separator: ",")
    }
}

/// Finds the route for a path and applies Consul's method rules (OPTIONS → 200, others → 405).
public struct RouteTable: Sendable {
    /// Exact paths by text; an exact match is never shorter than a matching prefix.
    private var exact: [String: Route] = [:]
    /// Prefix routes, longest first.
    private var prefixes: [Route] = []

    public init(_ groups: [[Route]]) {
        for route in groups.flatMap({ $0 }) {
            switch route.pattern {
            case .exact(let path):
                precondition(exact[path] == nil, "two routes for \(path): give one route all its methods")
                exact[path] = route
            case .prefix: prefixes.append(route)
            }
        }
        prefixes.sort { $0.pattern.text.count > $1.pattern.text.count }
    }

    /// Every route and method as `(method, pattern)`, prefixes ending in `/`: what a document or a
    /// test that must cover the whole API walks.
    public var endpoints: [(method: String, pattern: String)] {
        (Array(exact.values) + prefixes).flatMap { route in route.methods.map { ($0, route.pattern.text) } }
            .sorted { ($0.pattern, $0.method) < ($1.pattern, $1.method) }
    }

    /// The pattern of the route that serves `path`, nil for a 404.
    public func pattern(serving path: String) -> String? {
        match(path)?.0.pattern.text
    }

    public func respond(to request: APIRequest) async -> APIResponse {
        switch route(request) {
        case .answer(let response): return response
        case .handler(let route, let routed):
            do {
                return try await route.handler(routed)
            } catch {
                return .error(error)
            }
        }
    }

    /// The answer without a task: unknown paths, methods, OPTIONS, and routes whose fast handler
    /// answers now or parks the request. Nil: use ``respond(to:)``.
    public func respondFast(to request: APIRequest, later: LaterAnswer) -> FastAnswer? {
        switch route(request) {
        case .answer(let response): return .response(response)
        case .handler(let route, let routed):
            guard let fast = route.fast else { return nil }
            do {
                return try fast(routed, later)
            } catch {
                return .response(.error(error))
            }
        }
    }

    /// Whether ``respondFast(to:)`` may answer a request for `method` and `path`.
    public func mayRespondFast(method: String, path: String) -> Bool {
        guard let (route, _) = match(path) else { return true }
        return method == "OPTIONS" || !route.methods.contains(method) || route.fast != nil
    }

    private enum Routing {
        case answer(APIResponse)
        case handler(Route, APIRequest)
    }

    private func route(_ request: APIRequest) -> Routing {
        guard let (route, suffix) = match(request.path) else {
            return .answer(APIResponse(status: 404, headers: [("Content-Type", "text/plain; charset=utf-8")],
                                       body: Array("404 page not found\n".utf8)))
        }
        if request.method == "OPTIONS" {
            return .answer(APIResponse(status: 200, headers: [("Allow", Route.allowHeader(route.methods))]))
        }
        guard route.methods.contains(request.method) else {
            return .answer(.error(.methodNotAllowed(request.method, allowed: route.methods)))
        }
        var routed = request
        routed.pathSuffix = suffix
        return .handler(route, routed)
    }

    func match(_ path: String) -> (Route, String)? {
        if let route = exact[path] { return (route, "") }
        for route in prefixes {
            if case .prefix(let prefix) = route.pattern, path.hasPrefix(prefix) {
                return (route, String(path.dropFirst(prefix.count)))
            }
        }
        return nil
    }
}
