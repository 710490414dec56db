// The HTTP listener: turns Hummingbird requests into APIRequests, applies the body limit,
// adds Consul's common headers and logs each request with tokens hidden.

import AgentConfig
import CompressNIO
import ConnectdCore
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

public enum AgentHTTPServer {
    /// Every route group of the API, in one table.
    public static func routeTable(backend: any AgentBackend, logger: Logger, extraRoutes: [[Route]] = []) -> RouteTable {
        let cache = RenderCache()
        return RouteTable([
            AgentSelfRoutes.routes(backend),
            AgentServiceRoutes.routes(backend, cache: cache, logger: logger),
            ProxyStatusRoutes.routes(backend),
            ProxyConfigRoutes.routes(backend, cache: cache),
            ConnectCARoutes.routes(backend, cache: cache),
            AuthorizeRoutes.routes(backend),
            IntentionRoutes.routes(backend),
            CatalogRoutes.routes(backend),
        ] + extraRoutes)
    }

    /// A Hummingbird application (a ServiceLifecycle `Service`) serving `table` on `host:port`.
    ///
    /// - Parameters:
    ///   - maxBodyBytes: reads the limit for each request, so a reload can change it.
    ///   - onListening: called with the bound port once the socket is listening.
    public static func application(
        table: RouteTable, host: String, port: Int, maxBodyBytes: @escaping @Sendable () -> Int,
        logger: Logger, onListening: @escaping @Sendable (Int) async -> Void
    ) -> some ApplicationProtocol {
        let responder = CallbackResponder<AgentRequestContext> { request, context in
            await respond(to: request, context: context, table: table, maxBodyBytes: maxBodyBytes(), logger: logger)
        }
        let dates = DateHeader()
        return Application(
            responder: responder,
            server: .http1(configuration: HTTP1Channel.Configuration(additionalChannelHandlers: [
                FastPathHandler(table: table, maxBodyBytes: maxBodyBytes, logger: logger, dates: dates),
            ])),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    static func respond(to request: Request, context: AgentRequestContext, table: RouteTable, maxBodyBytes: Int, logger: Logger) async -> Response {
        let logging = logger.logLevel <= .debug
        let started = logging ? ContinuousClock.now : nil
        let response: APIResponse
        switch await collectBody(request, limit: maxBodyBytes) {
        case .failure(let error):
            response = .error(error)
        case .success(let body):
            let apiRequest = APIRequest(
                method: request.method.rawValue,
                path: PercentDecoding.decode(request.uri.path),
                query: APIRequest.parseQuery(request.uri.query ?? ""),
                headers: request.headers.map { ($0.name.canonicalName, $0.value) },
                body: body)
            response = await table.respond(to: apiRequest)
        }
        if logging, let started {
            logRequest(logger, method: request.method.rawValue, path: request.uri.path, query: request.uri.query,
                       status: response.status, started: started, remote: context.remoteAddress)
        }
        let gzip = request.headers[.acceptEncoding]?.lowercased().contains("gzip") ?? false
        return makeResponse(response, gzip: gzip)
    }

    /// Reads the body up to `limit` bytes; a larger one is a 413 naming the limit and its key.
    static func collectBody(_ request: Request, limit: Int) async -> Result<[UInt8], APIError> {
        let tooLarge = APIError(status: 413, message: "Request body too large: the limit is \(limit) bytes (limits.http_max_request_bytes)")
        let declared = request.headers[.contentLength].flatMap(Int.init)
        if let declared, declared > limit { return .failure(tooLarge) }
        // Nothing to read: no length and no chunked body (most GETs).
        if declared == 0 || (declared == nil && request.headers[.transferEncoding] == nil) { return .success([]) }
        do {
            var buffer = try await request.body.collect(upTo: limit)
            return .success(buffer.readBytes(length: buffer.readableBytes) ?? [])
        } catch is NIOTooManyBytesError {
            return .failure(tooLarge)
        } catch {
            // Bad framing (an invalid chunk size, a body cut short) is the client's mistake, not a size.
            return .failure(.badRequest("Bad request: malformed request body: \(bodyFailure(error))"))
        }
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

    static func logRequest(_ logger: Logger, method: String, path: String, status: Int, started: ContinuousClock.Instant,
                           from remote: NIOCore.SocketAddress?) {
        logRequest(logger, method: method, path: path, query: nil, status: status, started: started, remote: remote)
    }

    /// Adds `Vary` and `Content-Length`; gzips a non-empty body for clients that accept it, as
    /// Consul's HTTP server does.
    static func makeResponse(_ response: APIResponse, gzip: Bool) -> Response {
        let (fields, body) = responseFields(response, gzip: gzip)
        return Response(status: HTTPResponse.Status(code: response.status), headers: fields, body: ResponseBody(byteBuffer: body))
    }

    /// The header fields and body of an answer (both server paths use this).
    static func responseFields(_ response: APIResponse, gzip: Bool) -> (HTTPFields, ByteBuffer) {
        var fields = HTTPFields()
        var body = ByteBuffer(bytes: response.body)
        if gzip, let compressed = ResponseBytes.gzipped(response.body) {
            body = compressed
            fields.append(HTTPField(name: .contentEncoding, value: "gzip"))
        }
        for (name, value) in response.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        fields.append(HTTPField(name: .vary, value: "Accept-Encoding"))
        fields[.contentLength] = String(body.readableBytes)
        return (fields, body)
    }
}
