// Routes registered like Consul's (Go ServeMux): exact paths and `/`-terminated prefixes,
// the longest match wins, each with its allowed methods.

public typealias APIHandler = @Sendable (APIRequest) async throws(APIError) -> APIResponse

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

    public init(_ pattern: Pattern, methods: [String], handler: @escaping APIHandler) {
        self.pattern = pattern
        self.methods = methods
        self.handler = handler
    }

    /// `OPTIONS,GET` as Consul writes it.
    public static func allowHeader(_ methods: [String]) -> String {
        (["OPTIONS"] + methods).joined(separator: ",")
    }
}

/// Finds the route for a path and applies Consul's method rules (OPTIONS → 200, others → 405).
public struct RouteTable: Sendable {
    private var routes: [Route] = []

    public init(_ groups: [[Route]]) {
        routes = groups.flatMap { $0 }.sorted { $0.pattern.text.count > $1.pattern.text.count }
    }

    public func respond(to request: APIRequest) async -> APIResponse {
        guard let (route, suffix) = match(request.path) else {
            return APIResponse(status: 404, headers: [("Content-Type", "text/plain; charset=utf-8")],
                               body: Array("404 page not found\n".utf8))
        }
        if request.method == "OPTIONS" {
            return APIResponse(status: 200, headers: [("Allow", Route.allowHeader(route.methods))])
        }
        guard route.methods.contains(request.method) else {
            return .error(.methodNotAllowed(request.method, allowed: route.methods))
        }
        var routed = request
        routed.pathSuffix = suffix
        do {
            return try await route.handler(routed)
        } catch {
            return .error(error)
        }
    }

    func match(_ path: String) -> (Route, String)? {
        for route in routes {
            switch route.pattern {
            case .exact(let exact) where exact == path:
                return (route, "")
            case .prefix(let prefix) where path.hasPrefix(prefix):
                return (route, String(path.dropFirst(prefix.count)))
            default:
                continue
            }
        }
        return nil
    }
}
