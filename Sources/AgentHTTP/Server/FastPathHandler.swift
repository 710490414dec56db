// Answers on the connection's event loop the requests that need no waiting (routes with a fast
// handler: cached roots and leaves, proxy config with a differing or no hash, authorize, errors),
// and hands every other request on to Hummingbird's async responder unchanged. It sits after
// HTTP decoding, where HTTP/1.1 pipelining is already serialized, so answers never overtake.

import ConnectdCore
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes

final class FastPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum Phase {
        case idle
        /// Holding a request a fast handler may answer, with its body so far.
        case holding(HTTPRequest, String, ByteBuffer)
        /// Passing a request through to the async responder.
        case passing
    }

    private let table: RouteTable
    private let maxBodyBytes: @Sendable () -> Int
    private let logger: Logger
    private let dates: DateHeader
    private var phase = Phase.idle
    /// Requests handed to the async responder and not yet answered. While any is, later requests
    /// (pipelined by the client) go the same way, so answers keep their order.
    private var inFlight = 0

    init(table: RouteTable, maxBodyBytes: @escaping @Sendable () -> Int, logger: Logger, dates: DateHeader) {
        self.table = table
        self.maxBodyBytes = maxBodyBytes
        self.logger = logger
        self.dates = dates
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (phase, part) {
        case (.idle, .head(let head)):
            let path = PercentDecoding.decode(Self.path(of: head))
            if inFlight == 0 && table.mayRespondFast(method: head.method.rawValue, path: path) {
                phase = .holding(head, path, context.channel.allocator.buffer(capacity: 0))
            } else {
                phase = .passing
                context.fireChannelRead(data)
            }
        case (.holding(let head, let path, var body), .body(var chunk)):
            if body.readableBytes + chunk.readableBytes > maxBodyBytes() {
                // Too large for the fast path: the async responder answers (413) and drains it.
                phase = .passing
                context.fireChannelRead(wrapInboundOut(.head(head)))
                if body.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(.body(body))) }
                context.fireChannelRead(data)
                return
            }
            body.writeBuffer(&chunk)
            phase = .holding(head, path, body)
        case (.holding(let head, let path, var body), .end):
            phase = .idle
            let request = Self.apiRequest(head, path: path, body: body.readBytes(length: body.readableBytes) ?? [])
            let started = logger.logLevel <= .debug ? ContinuousClock.now : nil
            if let response = table.respondFast(to: request) {
                write(response, for: head, context: context, started: started, request: request)
            } else {
                inFlight += 1
                context.fireChannelRead(wrapInboundOut(.head(head)))
                if request.body.count > 0 { context.fireChannelRead(wrapInboundOut(.body(ByteBuffer(bytes: request.body)))) }
                context.fireChannelRead(data)
            }
        case (.passing, .end):
            phase = .idle
            inFlight += 1
            context.fireChannelRead(data)
        default:
            context.fireChannelRead(data)
        }
    }

    /// Answers from the async responder pass here on their way out.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), inFlight > 0 { inFlight -= 1 }
        context.write(data, promise: promise)
    }

    private func write(_ response: APIResponse, for head: HTTPRequest, context: ChannelHandlerContext,
                       started: ContinuousClock.Instant?, request: APIRequest) {
        if let started {
            AgentHTTPServer.logRequest(logger, method: request.method, path: Self.path(of: head), status: response.status,
                                       started: started, from: context.channel.remoteAddress)
        }
        let gzip = head.headerFields[.acceptEncoding]?.lowercased().contains("gzip") ?? false
        let (fields, body) = AgentHTTPServer.responseFields(response, gzip: gzip)
        var headers = fields
        headers[.date] = dates.now()
        let close = head.headerFields[.connection]?.lowercased().contains("close") ?? false
        if close { headers[.connection] = "close" }
        context.write(wrapOutboundOut(.head(HTTPResponse(status: HTTPResponse.Status(code: response.status), headerFields: headers))),
                      promise: nil)
        if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(body)), promise: nil) }
        if close {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    /// The path part of a request target.
    static func path(of head: HTTPRequest) -> String {
        let target = head.path ?? "/"
        if let question = target.firstIndex(of: "?") { return String(target[..<question]) }
        return target
    }

    /// `path` is the request's path, already percent-decoded.
    static func apiRequest(_ head: HTTPRequest, path: String, body: [UInt8]) -> APIRequest {
        let target = head.path ?? "/"
        var query = ""
        if let question = target.firstIndex(of: "?") { query = String(target[target.index(after: question)...]) }
        return APIRequest(method: head.method.rawValue, path: path,
                          query: APIRequest.parseQuery(query),
                          headers: head.headerFields.map { ($0.name.canonicalName, $0.value) }, body: body)
    }
}
