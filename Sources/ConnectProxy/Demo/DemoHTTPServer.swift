// A tiny HTTP server for the demo and the end-to-end tests: answers every request with
// "hello from <name>". It stands in for the services behind the proxies.

import NIOCore
import NIOHTTP1
import NIOPosix

public enum DemoHTTPServer {
    /// Serves on `host:port` until `stop` returns.
    public static func run(name: String, host: String, port: Int, until stop: @escaping @Sendable () async -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let body = "hello from \(name)\n"
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Responder(body: body)) }
                }
            }
            .bind(host: host, port: port).get()
        await stop()
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let body: String
        var keepAlive = true

        init(body: String) { self.body = body }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): keepAlive = head.isKeepAlive
            case .body: break
            case .end:
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "text/plain")
                headers.add(name: "Content-Length", value: String(body.utf8.count))
                if !keepAlive { headers.add(name: "Connection", value: "close") }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
                let keepAlive = keepAlive
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                    if !keepAlive { bound.value.close(promise: nil) }
                }
            }
        }
    }
}
