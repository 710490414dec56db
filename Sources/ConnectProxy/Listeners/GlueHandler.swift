// Forwards bytes between two channels on the same event loop, with back-pressure and
// half-closure: the usual NIO glue pattern.

import CoreMetrics
import NIOCore

final class GlueHandler: ChannelDuplexHandler {
    /// Both sides carry bytes: a socket's, or the TLS handler's plaintext.
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// Counts the bytes this side reads (nil: not counted).
    private let reads: CoreMetrics.Counter?

    private init(counting reads: CoreMetrics.Counter?) { self.reads = reads }

    /// `firstReads` and `secondReads` count the bytes each side reads.
    static func matchedPair(firstReads: CoreMetrics.Counter? = nil, secondReads: CoreMetrics.Counter? = nil) -> (GlueHandler, GlueHandler) {
        let first = GlueHandler(counting: firstReads)
        let second = GlueHandler(counting: secondReads)
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    private func partnerWrite(_ data: NIOAny) { context?.write(data, promise: nil) }
    private func partnerFlush() { context?.flush() }

    private func partnerWriteEOF() {
        context?.close(mode: .output, promise: nil)
    }

    private func partnerCloseFull() { context?.close(promise: nil) }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    private var partnerWritable: Bool { context?.channel.isWritable ?? false }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let reads { reads.increment(by: Int64(unwrapInboundIn(data).readableBytes)) }
        partner?.partnerWrite(data)
    }
    func channelReadComplete(context: ChannelHandlerContext) { partner?.partnerFlush() }
    func channelInactive(context: ChannelHandlerContext) { partner?.partnerCloseFull() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            partner?.partnerWriteEOF()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { partner?.partnerCloseFull() }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

extension GlueHandler {
    /// Joins the channel of `context` to `other`: a glue pair takes the place of `handler` (which
    /// leaves the pipeline), after the bytes `handler` held are written to `other`. On failure
    /// both channels are closed and false is returned. `context`'s channel is the listener's
    /// client: what it sends and receives is counted in `metrics`.
    static func join(_ context: ChannelHandlerContext, replacing handler: some RemovableChannelHandler,
                     with other: any Channel, held: [ByteBuffer], metrics: ListenerMetrics? = nil) -> Bool {
        let (ownGlue, otherGlue) = matchedPair(firstReads: metrics?.received, secondReads: metrics?.sent)
        metrics?.received.increment(by: Int64(held.reduce(0) { $0 + $1.readableBytes }))
        do {
            try other.pipeline.syncOperations.addHandler(otherGlue)
            try context.pipeline.syncOperations.addHandler(ownGlue, position: .after(handler))
        } catch {
            other.close(promise: nil)
            context.close(promise: nil)
            return false
        }
        for buffer in held { other.write(buffer, promise: nil) }
        other.flush()
        context.pipeline.syncOperations.removeHandler(handler, promise: nil)
        return true
    }
}

/// Bytes a connection received before it was joined to its other side, bounded.
struct HeldBytes {
    static let limit = 1 << 20
    private(set) var buffers: [ByteBuffer] = []
    private var count = 0

    /// Holds `buffer`; false when that goes over the limit.
    mutating func append(_ buffer: ByteBuffer) -> Bool {
        count += buffer.readableBytes
        buffers.append(buffer)
        return count <= Self.limit
    }

    mutating func removeAll() {
        buffers.removeAll()
        count = 0
    }
}
