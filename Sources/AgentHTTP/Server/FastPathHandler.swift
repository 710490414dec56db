// Answers on the connection's event loop the requests routes can answer without a task (cached
// roots and leaves, authorize, errors) and parks blocking queries on their watch by callback, so
// a waiting client costs its connection and a callback, not a task; every other request goes on
// to Hummingbird's async responder unchanged. It sits after HTTP decoding, where HTTP/1.1
// pipelining is already serialized; requests behind a parked one are held, so answers never
// overtake.

import AgentState
import AgentStore
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
        /// A blocking query parked on its watch; the answer arrives through ``answerParked(_:_:)``.
        case parked(Parked)
    }

    /// What a parked request needs for its answer, kept small: thousands may wait at once.
    private struct Parked {
        let ticket: UInt64
        let query: ParkedQuery
        let reply: Reply
    }

    /// How to answer a request: its encoding and connection choices, and what to log.
    private struct Reply {
        let gzip: Bool
        let close: Bool
        let method: String
        /// The raw path, for the request log; empty when not logging.
        let path: String
        let started: ContinuousClock.Instant?
    }

    private let table: RouteTable
    private let maxBodyBytes: @Sendable () -> Int
    private let logger: Logger
    private let dates: DateHeader
    private var phase = Phase.idle
    /// Requests handed to the async responder and not yet answered. While any is, later requests
    /// (pipelined by the client) go the same way, so answers keep their order.
    private var inFlight = 0
    /// Inbound parts and events that arrived while a request was parked, replayed after its answer.
    private var held: [HeldInbound] = []
    private var readPending = false
    private var nextTicket: UInt64 = 0
    private var context: ChannelHandlerContext?
    /// Hands a parked request's answer back to this connection's event loop; made once per
    /// connection (not per request) and dropped when the handler is removed.
    private var sendLater: (@Sendable (UInt64, APIResponse) -> Void)?
    /// The context of the ``SocketOutlet`` this handler put at the socket end of the pipeline.
    private var outlet: ChannelHandlerContext?

    private enum HeldInbound {
        case part(NIOAny)
        case event(Any)
    }

    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536)

    /// Parts held beyond this stop reading from the socket until the parked answer is written.
    private static let heldLimit = 64

    init(table: RouteTable, maxBodyBytes: @escaping @Sendable () -> Int, logger: Logger, dates: DateHeader) {
        self.table = table
        self.maxBodyBytes = maxBodyBytes
        self.logger = logger
        self.dates = dates
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        sendLater = { ticket, response in loop.execute { handler.value.answerParked(ticket, response) } }
        // A channel keeps its receive buffer for the next read, so its first size is memory every
        // connection holds for its life (thousands of them park on blocking queries). API requests
        // are a few hundred bytes; the buffer still grows for large bodies.
        try? context.channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: Self.receiveBuffers)
        let outlet = SocketOutlet()
        do {
            try context.pipeline.syncOperations.addHandler(outlet, position: .first)
            self.outlet = try context.pipeline.syncOperations.context(handler: outlet)
        } catch {
            // Without it, answers go through the HTTP encoders (see `write`).
            self.outlet = nil
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        abandonParked()
        self.context = nil
        outlet = nil
        sendLater = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The client went away: take the parked query's callback back from its watch.
        abandonParked()
        held.removeAll()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .parked = phase {
            held.append(.part(data))
            return
        }
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
            let reply = Reply(gzip: head.headerFields[.acceptEncoding]?.lowercased().contains("gzip") ?? false,
                              close: head.headerFields[.connection]?.lowercased().contains("close") ?? false,
                              method: request.method, path: started == nil ? "" : Self.path(of: head), started: started)
            nextTicket += 1
            let ticket = nextTicket
            switch table.respondFast(to: request, later: LaterAnswer(ticket: ticket, send: sendLater ?? { _, _ in })) {
            case .response(let response)?:
                write(response, reply, context: context)
            case .parked(let query)?:
                phase = .parked(Parked(ticket: ticket, query: query, reply: reply))
            case nil:
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

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .parked = phase else { return context.fireUserInboundEventTriggered(event) }
        if case ChannelEvent.inputClosed = event {
            // The client closed its side while waiting: it is gone, as Go's server would judge.
            abandonParked()
            held.removeAll()
            context.close(promise: nil)
            return
        }
        // A quiesce (graceful shutdown) must not close the connection under a parked request:
        // handlers after this one do not know about it. It is passed on after the answer.
        held.append(.event(event))
    }

    func read(context: ChannelHandlerContext) {
        // Keep reading while parked (so a client that goes away is noticed), unless a client
        // pipelines so much behind the parked request that holding more is unreasonable.
        if case .parked = phase, held.count >= Self.heldLimit {
            readPending = true
        } else {
            context.read()
        }
    }

    /// Answers from the async responder pass here on their way out.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), inFlight > 0 { inFlight -= 1 }
        context.write(data, promise: promise)
    }

    /// Writes a parked request's answer, then replays what arrived behind it.
    private func answerParked(_ ticket: UInt64, _ response: APIResponse) {
        guard case .parked(let parked) = phase, parked.ticket == ticket, let context else { return }
        phase = .idle
        write(response, parked.reply, context: context)
        while !held.isEmpty {
            if case .parked = phase { break }
            switch held.removeFirst() {
            case .part(let data): channelRead(context: context, data: data)
            case .event(let event): context.fireUserInboundEventTriggered(event)
            }
        }
        if readPending, held.count < Self.heldLimit {
            readPending = false
            context.read()
        }
    }

    private func abandonParked() {
        guard case .parked(let parked) = phase else { return }
        phase = .idle
        parked.query.abandon()
    }

    private func write(_ response: APIResponse, _ reply: Reply, context: ChannelHandlerContext) {
        if let started = reply.started {
            AgentHTTPServer.logRequest(logger, method: reply.method, path: reply.path, status: response.status,
                                       started: started, from: context.channel.remoteAddress)
        }
        let written: EventLoopFuture<Void>
        if let outlet {
            let bytes = ResponseBytes.encode(response, gzip: reply.gzip, date: dates.now(), close: reply.close,
                                             allocator: context.channel.allocator)
            written = outlet.writeAndFlush(NIOAny(bytes))
        } else {
            let (fields, body) = AgentHTTPServer.responseFields(response, gzip: reply.gzip)
            var headers = fields
            headers[.date] = dates.now()
            if reply.close { headers[.connection] = "close" }
            context.write(wrapOutboundOut(.head(HTTPResponse(status: HTTPResponse.Status(code: response.status),
                                                             headerFields: headers))), promise: nil)
            if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(body)), promise: nil) }
            written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        }
        if reply.close {
            written.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
        }
    }

    /// The path part of a request target.
    static func path(of head: HTTPRequest) -> String {
        let target = head.path ?? "/"
        if let question = target.utf8.firstIndex(of: UInt8(ascii: "?")) { return String(target[..<question]) }
        return target
    }

    /// `path` is the request's path, already percent-decoded.
    static func apiRequest(_ head: HTTPRequest, path: String, body: [UInt8]) -> APIRequest {
        let target = head.path ?? "/"
        var query = ""
        if let question = target.utf8.firstIndex(of: UInt8(ascii: "?")) { query = String(target[target.index(after: question)...]) }
        return APIRequest(method: head.method.rawValue, path: path,
                          query: APIRequest.parseQuery(query),
                          headers: head.headerFields.map { ($0.name.canonicalName, $0.value) }, body: body)
    }
}
