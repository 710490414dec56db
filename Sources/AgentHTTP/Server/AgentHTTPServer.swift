// The API's one route table, and what the server says about requests: why a body could not be
// read, and the request log line with tokens hidden.

import ConnectdCore
import Logging
import NIOCore
import NIOHTTP1

public enum AgentHTTPServer {
    /// Every route group of the API, in one table.
    public static func routeTable(backend: any AgentBackend, logger: Logger, extraRoutes: [[Route]] = []) -> RouteTable {
        let cache = RenderCache()
        return RouteTable([
            AgentSelfRoutes.routes(backend),
            AgentMetricsRoutes.routes(backend),
            AgentServiceRoutes.routes(backend, cache: cache, logger: logger),
            ProxyStatusRoutes.routes(backend),
            ProxyConfigRoutes.routes(backend, cache: cache),
            ConnectCARoutes.routes(backend, cache: cache),
            AuthorizeRoutes.routes(backend),
            IntentionRoutes.routes(backend),
            CatalogRoutes.routes(backend),
            HealthCheckRoutes.routes(backend),
        ] + extraRoutes)
    }

    /// What was wrong with a body that could not be read, in words.
    static func bodyFailure(_ error: any Error) -> String {
        switch error as? HTTPParserError {
        case .invalidChunkSize?: "invalid chunk size"
        case .invalidContentLength?: "invalid Content-Length"
        case .invalidEOFState?: "the body ended early"
        case let parser?: "\(parser)"
        case nil: "\(error)"
        }
    }

    /// The debug line of one request, with tokens hidden.
    static func logRequest(_ logger: Logger, method: String, path: String, query: String? = nil, status: Int,
                           started: ContinuousClock.Instant, remote: NIOCore.SocketAddress?) {
        let elapsed = ContinuousClock.now - started
        let from = remote.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "unknown"
        logger.debug("http request", metadata: [
            "method": "\(method)",
            "target": "\(TokenExtraction.redactedTarget(path: path, rawQuery: query))",
            "status": "\(status)",
            "duration": "\(GoDuration.format(nanoseconds: elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000))",
            "from": "\(from)",
        ])
    }
}
