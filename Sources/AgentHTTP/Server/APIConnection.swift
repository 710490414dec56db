// One HTTP/1.1 connection of the API, after NIO's request decoder: collects each request (body
// limit, 100-continue), routes it through the one route table, and writes each answer as one
// buffer. A route answers on the event loop, parks a blocking query by callback (no task), or is
// handed to a task; either way the answer comes back to this loop. Requests are answered one at a
// time in arrival order: what a client pipelines behind an open request is held until its answer
// is written. It also owns the connection's clocks: a request must arrive within the read
// timeout, a kept-alive connection with no request in it is closed after the idle timeout (a
// parked query is not idle), and a closing one waits for the client's side at most the linger
// time. The deadlines are kept by the loop's ConnectionClocks, not a timer per connection.

import AgentConfig
import AgentStore
import ConnectdCore
import Logging
import NIOCore
import NIOHTTP1

final class APIConnection: ChannelDuplexHandler, RemovableChannelHandler, ClockedConnection {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        /// Between requests.
        case idle
        /// A head arrived; its body so far (none yet for most API requests).
        case reading(HTTPRequestHead, ByteBuffer?)
        /// The request is with its route (parked or in a task); the answer arrives with `ticket`.
        case answering(ticket: UInt64, parked: ParkedQuery?, reply: Reply)
        /// The last answer is written; input is read and dropped until the client closes.
        case closing
    }

    /// How to write a request's answer, and what to log.
    private struct Reply {
        let gzip: Bool
        let close: Bool
        let method: String
        /// The raw target, for the request log; empty when not logging.
        let target: String
        let started: ContinuousClock.Instant?
        /// The pattern of the route that serves the request (nil: none), for the metrics.
        let route: String?
        /// When the request was complete, for the metrics; nil when not measured.
        let measured: ContinuousClock.Instant?
    }

    /// What arrived behind an open request, in order.
    private enum Held {
        case part(HTTPServerRequestPart)
        case failure(any Error)
        case inputClosed
    }

    /// Which clock runs: the request being read must be complete by the deadline, or the idle
    /// connection closes then, or the closing one stops waiting for the client. Parked and
    /// answering requests run no clock.
    private enum Clock {
        case none
        case read
        case idle
        /// The last answer is being written: a client that reads none of it for the idle
        /// timeout is gone.
        case writing
        case linger
    }

    /// Parts held beyond this stop reading from the socket until the open request is answered.
    private static let heldLimit = 64
    /// How long a closing connection waits for the client's side after the last answer.
    private static let lingerTime = TimeAmount.seconds(2)

    private let server: ServerContext
    private let client: String
    private var phase = Phase.idle
    private var held: [Held] = []
    private var clock = Clock.none
    /// When the running clock expires; `.distantFuture` while none runs. Moving it costs a store:
    /// the loop's clocks look at it when their timer fires.
    private(set) var deadline = NIODeadline.distantFuture
    private var clocks: ConnectionClocks?
    private var readPending = false
    /// Set by a stop (quiesce) or a client that closed its side: close after the open answer.
    private var closeAfterAnswer = false
    private var nextTicket: UInt64 = 0
    private var context: ChannelHandlerContext?
    /// Brings an answer from any thread back to this loop; made once per connection.
    private var deliver: (@Sendable (UInt64, APIResponse) -> Void)?

    init(server: ServerContext, client: String) {
        self.server = server
        self.client = client
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        deliver = { ticket, response in loop.execute { handler.value.answered(ticket, response) } }
        let clocks = server.clocks(on: loop)
        clocks.add(self)
        self.clocks = clocks
        // The first request must arrive within the read timeout, as Go's server counts it.
        startClock(.read)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        clocks?.remove(self)
        clocks = nil
        stopClock()
        abandonParked()
        held.removeAll()
        self.context = nil
        deliver = nil
        server.registry.remove(context.channel, client: client)
    }

    func channelInactive(context: ChannelHandlerContext) {
        abandonParked()
        held.removeAll()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch phase {
        case .closing: return
        case .answering: held.append(.part(part))
        case .idle, .reading:
            if held.isEmpty { handle(part, context: context) } else { held.append(.part(part)) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Bytes arrived on an idle connection: from now on the request must be complete in time.
        if case .idle = clock { startClock(.read) }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .closing = phase { return context.close(promise: nil) }
        if case .answering = phase {
            held.append(.failure(error))
        } else {
            fail(error, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed:
            switch phase {
            case .answering(_, .some, _):
                // The client closed while waiting: it is gone, as Go's server would judge.
                abandonParked()
                context.close(promise: nil)
            case .answering:
                held.append(.inputClosed)
            case .idle, .reading, .closing:
                context.close(promise: nil)
            }
        case is ChannelShouldQuiesceEvent:
            closeAfterAnswer = true
            if case .idle = phase, held.isEmpty { context.close(promise: nil) }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func read(context: ChannelHandlerContext) {
        if held.count >= Self.heldLimit {
            readPending = true
        } else {
            context.read()
        }
    }

    // MARK: Requests

    /// One part of the request being read, with nothing open before it.
    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            guard case .idle = phase else { return }
            if case .read = clock {} else { startClock(.read) }
            let limit = server.maxBodyBytes()
            if let declared = head.headers.first(name: "content-length").flatMap(Int.init), declared > limit {
                return finish(with: .error(Self.tooLarge(limit)), context: context)
            }
            if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(ResponseBytes.continue(allocator: context.channel.allocator)), promise: nil)
            }
            phase = .reading(head, nil)
        case .body(var chunk):
            guard case .reading(let head, let sofar) = phase else { return }
            let limit = server.maxBodyBytes()
            guard (sofar?.readableBytes ?? 0) + chunk.readableBytes <= limit else {
                return finish(with: .error(Self.tooLarge(limit)), context: context)
            }
            phase = .idle  // drop the reference so the append does not copy
            if var body = sofar {
                body.writeBuffer(&chunk)
                phase = .reading(head, body)
            } else {
                phase = .reading(head, chunk)
            }
        case .end:
            guard case .reading(let head, let body) = phase else { return }
            stopClock()
            route(head, body: body.map { Array($0.readableBytesView) } ?? [], context: context)
        }
    }

    /// Sends a complete request to its route.
    private func route(_ head: HTTPRequestHead, body: [UInt8], context: ChannelHandlerContext) {
        let target = head.uri
        let question = target.utf8.firstIndex(of: UInt8(ascii: "?"))
        let rawPath = question.map { String(target[..<$0]) } ?? target
        let rawQuery = question.map { String(target[target.index(after: $0)...]) } ?? ""
        let request = APIRequest(method: head.method.rawValue, path: PercentDecoding.decode(rawPath),
                                 query: APIRequest.parseQuery(rawQuery),
                                 headers: head.headers.map { ($0.name.lowercased(), $0.value) }, body: body)
        let measured = server.metrics == nil ? nil : ContinuousClock.now
        let started = server.logger.logLevel <= .debug ? (measured ?? ContinuousClock.now) : nil
        let reply = Reply(gzip: head.headers.first(name: "accept-encoding")?.lowercased().contains("gzip") ?? false,
                          close: !head.isKeepAlive, method: request.method, target: started == nil ? "" : target,
                          started: started, route: measured == nil ? nil : server.table.pattern(serving: request.path),
                          measured: measured)
        nextTicket += 1
        let ticket = nextTicket
        let deliver = deliver ?? { _, _ in }
        switch server.table.respondFast(to: request, later: LaterAnswer(ticket: ticket, send: deliver)) {
        case .response(let response)?:
            phase = .idle
            write(response, reply, context: context)
            if case .idle = phase, held.isEmpty { startClock(.idle) }
        case .parked(let query)?:
            phase = .answering(ticket: ticket, parked: query, reply: reply)
            if held.contains(where: { if case .inputClosed = $0 { true } else { false } }) {
                abandonParked()
                context.close(promise: nil)
            }
        case nil:
            phase = .answering(ticket: ticket, parked: nil, reply: reply)
            let table = server.table
            Task { deliver(ticket, await table.respond(to: request)) }
        }
    }

    /// An answer from a parked query or a task, on this loop.
    private func answered(_ ticket: UInt64, _ response: APIResponse) {
        guard case .answering(let current, _, let reply) = phase, current == ticket, let context else { return }
        phase = .idle
        write(response, reply, context: context)
        resume(context: context)
    }

    /// Works through what arrived behind the answered request, then waits for more.
    private func resume(context: ChannelHandlerContext) {
        while !held.isEmpty {
            switch phase {
            case .answering, .closing: return
            case .idle, .reading: break
            }
            switch held.removeFirst() {
            case .part(let part): handle(part, context: context)
            case .failure(let error): fail(error, context: context)
            case .inputClosed:
                context.close(promise: nil)
                return
            }
        }
        if readPending {
            readPending = false
            context.read()
        }
        if case .idle = phase, case .none = clock { startClock(.idle) }
    }

    /// Writes the answer of the request just finished; closes afterwards when it or the client asked.
    private func write(_ response: APIResponse, _ reply: Reply, context: ChannelHandlerContext) {
        if let measured = reply.measured {
            server.metrics?.record(route: reply.route, method: reply.method, code: response.status, elapsed: ContinuousClock.now - measured)
        }
        if let started = reply.started {
            let question = reply.target.firstIndex(of: "?")
            AgentHTTPServer.logRequest(server.logger, method: reply.method,
                                       path: question.map { String(reply.target[..<$0]) } ?? reply.target,
                                       query: question.map { String(reply.target[reply.target.index(after: $0)...]) },
                                       status: response.status, started: started, remote: context.channel.remoteAddress)
        }
        let closing = reply.close || closeAfterAnswer
        let bytes = ResponseBytes.encode(response, gzip: reply.gzip, date: server.dates.now(), close: closing,
                                         allocator: context.channel.allocator)
        if closing {
            phase = .closing
            if held.isEmpty { closeWhenWritten(bytes, context: context) } else { closeAfterWrite(bytes, context: context) }
        } else {
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
        }
    }

    /// A request that cannot be read any further: answer it and close.
    private func finish(with response: APIResponse, context: ChannelHandlerContext) {
        let bytes = ResponseBytes.encode(response, gzip: false, date: server.dates.now(), close: true,
                                         allocator: context.channel.allocator)
        phase = .closing
        held.removeAll()
        closeAfterWrite(bytes, context: context)
    }

    /// Writes the last answer of a connection whose input was all read, then closes it, as Go's
    /// server does. The close waits behind the answers already queued on this loop: a wake-up of
    /// thousands of watchers answers all of them before it tidies up.
    private func closeWhenWritten(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        let channel = context.channel
        let loop = context.eventLoop
        startClock(.writing)
        context.writeAndFlush(wrapOutboundOut(bytes)).assumeIsolated().whenComplete { _ in
            loop.execute { channel.close(promise: nil) }
        }
    }

    /// Writes the last answer, shuts the sending side, and closes once the client has closed its
    /// side (or the linger time passes): closing with unread input would reset the connection
    /// and could destroy the answer before the client reads it.
    private func closeAfterWrite(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        let channel = context.channel
        startClock(.writing)
        context.writeAndFlush(wrapOutboundOut(bytes)).assumeIsolated().whenComplete { [self] _ in
            channel.close(mode: .output, promise: nil)
            setClock(.linger, deadline: .now() + Self.lingerTime)
        }
    }

    /// A decoder error (bad framing, oversized headers) or a socket error.
    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        guard let parse = error as? HTTPParserError else {
            context.close(promise: nil)
            return
        }
        let response: APIResponse
        switch (phase, parse) {
        case (.reading, _):
            response = .error(.badRequest("Bad request: malformed request body: \(AgentHTTPServer.bodyFailure(parse))"))
        case (_, .headerOverflow):
            response = .error(APIError(status: 431, message: "Request header fields too large"))
        default:
            response = .error(.badRequest("Bad request: malformed request: \(AgentHTTPServer.bodyFailure(parse))"))
        }
        finish(with: response, context: context)
    }

    private func abandonParked() {
        guard case .answering(let ticket, let parked?, let reply) = phase else { return }
        phase = .answering(ticket: ticket, parked: nil, reply: reply)
        parked.abandon()
    }

    // MARK: Clocks

    /// Starts the read clock (a request must be complete in time) or the idle clock.
    private func startClock(_ kind: Clock) {
        let limits = server.limits()
        let timeout = kind == .read ? limits.readTimeout : limits.idleTimeout  // idle and writing
        setClock(kind, deadline: .now() + .nanoseconds(timeout.components.seconds * 1_000_000_000
                                                       + timeout.components.attoseconds / 1_000_000_000))
    }

    private func setClock(_ kind: Clock, deadline: NIODeadline) {
        clock = kind
        self.deadline = deadline
        clocks?.deadlineMoved(to: deadline)
    }

    private func stopClock() {
        clock = .none
        deadline = .distantFuture
    }

    /// A request that did not arrive in time, a connection nobody uses, or a client that did not
    /// close its side after the last answer.
    func clockExpired() {
        guard let context, clock != .none, deadline <= .now() else { return }
        stopClock()
        context.close(promise: nil)
    }

    static func tooLarge(_ limit: Int) -> APIError {
        APIError(status: 413, message: "Request body too large: the limit is \(limit) bytes (limits.http_max_request_bytes)")
    }
}
