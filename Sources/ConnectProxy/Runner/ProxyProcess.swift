// Process-wide set-up of `connectd proxy`: one event-loop thread does everything. NIO's
// singleton group (sized 1) becomes Swift concurrency's global executor, so the proxy's tasks
// (watches, agent calls, config changes) run on the loop that carries its connections, with no
// cooperative pool beside it; sleeps are the loop's timers and stop signals come through a
// self-pipe read on the loop, so no libdispatch thread starts either.

import CProcShims
import NIOCore
import NIOPosix

public enum ProxyProcess {
    /// Call first thing on the main thread, before any task has run. False when Swift's hook
    /// could not be taken (the proxy then works the same, with the cooperative pool's threads).
    @discardableResult
    public static func takeOverTheGlobalExecutor() -> Bool {
        NIOSingletons.groupLoopCountSuggestion = 1
        return NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }

    /// The proxy's own loop: the singleton group, one thread unless something else sized it.
    public static var group: MultiThreadedEventLoopGroup { .singleton }

    /// Waits for the first of `signals` (returned), read from a self-pipe on `loop`.
    public static func firstSignal(of signals: [Int32], on loop: any EventLoop) async throws -> Int32 {
        let fd = signals.withUnsafeBufferPointer { connectd_signal_pipe($0.baseAddress, Int32($0.count)) }
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "signal pipe") }
        let received = loop.makePromise(of: Int32.self)
        let channel = try await NIOPipeBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SignalByte(received: received))
                }
            }
            .takingOwnershipOfDescriptor(input: fd).get()
        // The pipe stays open: a later signal is read and dropped (no write to a closed pipe).
        _ = channel
        return try await received.futureResult.get()
    }
}

/// Completes `received` with the first byte read (a signal's number); later bytes are dropped.
private final class SignalByte: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let received: EventLoopPromise<Int32>
    private var done = false

    init(received: EventLoopPromise<Int32>) { self.received = received }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !done, let signal = bytes.readInteger(as: UInt8.self) else { return }
        done = true
        received.succeed(Int32(signal))
    }

    func channelInactive(context: ChannelHandlerContext) {
        guard !done else { return }
        done = true
        received.fail(ChannelError.inputClosed)
    }
}

extension EventLoop {
    /// Sleeps on this loop's timer (not a libdispatch one); throws when the task is cancelled.
    func sleep(for duration: Duration) async throws {
        let (seconds, attoseconds) = duration.components
        let scheduled = scheduleTask(in: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)) {}
        try await withTaskCancellationHandler {
            try await scheduled.futureResult.get()
        } onCancel: {
            scheduled.cancel()
        }
    }
}
