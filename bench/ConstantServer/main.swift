// bench-constant-server: the floor for the HTTP benchmarks (issue 14). A bare SwiftNIO HTTP/1.1
// server with NIOHTTP1's standard pipeline on the same event loop group connectd uses, answering
// every request (any method, any path; a request body is read and dropped) with one constant JSON
// body on the event loop. No routing, no decoding, no state.
//
// Usage: bench-constant-server <port> [body-bytes]   (127.0.0.1 only)

import NIOCore
import NIOHTTP1
import NIOPosix

final class ConstantResponder: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let body: ByteBuffer
    let headers: HTTPHeaders

    init(bodyBytes: Int) {
        let filler = String(repeating: "x", count: max(0, bodyBytes - 12))
        body = ByteBuffer(string: "{\"Value\":\"\(filler)\"}")
        headers = ["Content-Type": "application/json", "Content-Length": "\(body.readableBytes)"]
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

let arguments = CommandLine.arguments
guard arguments.count >= 2, let port = Int(arguments[1]) else {
    fatalError("usage: bench-constant-server <port> [body-bytes]")
}
let responder = ConstantResponder(bodyBytes: arguments.count > 2 ? Int(arguments[2]) ?? 256 : 256)
let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.pipeline.configureHTTPServerPipeline().flatMap { channel.pipeline.addHandler(responder) }
    }
    .bind(host: "127.0.0.1", port: port).get()
try await channel.closeFuture.get()
