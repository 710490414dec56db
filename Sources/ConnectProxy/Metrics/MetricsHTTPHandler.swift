// The proxy's metrics endpoint on `config.prometheus_bind_addr`: `GET /metrics` (and `/`)
// answers the Prometheus text; anything else is a 404 or 405. One small answer per request.

import NIOCore
import NIOHTTP1
import NIOPosix
import Telemetry

enum MetricsEndpoint {
    /// Listens on `address` with an HTTP/1.1 server answering from `hub`. NIO's pipelining
    /// handler keeps answers in request order while one waits for the hub.
    static func bind(_ address: MetricsAddress, hub: MetricsHub, group: any EventLoopGroup) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(hub: hub))
                }
            }.bind(host: address.host, port: address.port).get()
    }
}

final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let hub: MetricsHub
    private var request: HTTPRequestHead?

    init(hub: MetricsHub) { self.hub = hub }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): request = head
        case .body: break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let status: HTTPResponseStatus
        let body: [UInt8]
        var headers = HTTPHeaders()
        if path != "/metrics" && path != "/" {
            (status, body) = (.notFound, Array("404 page not found\n".utf8))
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        } else if head.method != .GET && head.method != .HEAD {
            (status, body) = (.methodNotAllowed, Array("method not allowed\n".utf8))
            headers.add(name: "Allow", value: "GET, HEAD")
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        } else {
            headers.add(name: "Content-Type", value: MetricsHub.prometheusContentType)
            let text = context.eventLoop.makePromise(of: [UInt8].self)
            let hub = hub
            text.completeWithTask { await hub.prometheusText() }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            text.futureResult.whenSuccess { body in
                let (handler, context) = bound.value
                handler.write(status: .ok, headers: headers, body: body, for: head, context: context)
            }
            return
        }
        write(status: status, headers: headers, body: body, for: head, context: context)
    }

    private func write(status: HTTPResponseStatus, headers: HTTPHeaders, body: [UInt8], for head: HTTPRequestHead,
                       context: ChannelHandlerContext) {
        var headers = headers
        headers.add(name: "Content-Length", value: String(body.count))
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil) }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { written.whenComplete { _ in context.close(promise: nil) } }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
