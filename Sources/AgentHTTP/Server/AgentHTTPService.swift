// The HTTP API server as a ServiceLifecycle service on plain SwiftNIO: binds host:port or serves a
// socket systemd passed in, admits connections against the caps, backs off accepting when the
// process is out of descriptors, and on a stop drains: no new connections, each open one closes
// after its current answer (parked queries are released by the watch shutdown first), the rest
// are closed after a bounded wait.

import AgentConfig
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

public struct AgentHTTPService: Service, CustomStringConvertible {
    /// Where the server listens.
    public enum Listener: Sendable {
        case address(host: String, port: Int)
        /// A listening socket passed by systemd (socket activation).
        case descriptor(Int32)
    }

    let listener: Listener
    let table: RouteTable
    let maxBodyBytes: @Sendable () -> Int
    let limits: @Sendable () -> HTTPLimits
    let logger: Logger
    let onListening: @Sendable (Int) async -> Void
    /// How long a stop waits for open answers before closing what is left.
    let drainLimit: Duration
    let metrics: HTTPMetrics?

    public var description: String {
        switch listener {
        case .address(let host, let port): "AgentHTTPService(\(host):\(port))"
        case .descriptor(let fd): "AgentHTTPService(fd \(fd))"
        }
    }

    public init(listener: Listener, table: RouteTable, maxBodyBytes: @escaping @Sendable () -> Int,
                limits: @escaping @Sendable () -> HTTPLimits, logger: Logger, drainLimit: Duration = .seconds(10),
                metrics: HTTPMetrics? = nil, onListening: @escaping @Sendable (Int) async -> Void) {
        self.metrics = metrics
        self.listener = listener
        self.table = table
        self.maxBodyBytes = maxBodyBytes
        self.limits = limits
        self.logger = logger
        self.drainLimit = drainLimit
        self.onListening = onListening
    }

    /// Receive buffers start small: a channel keeps its buffer for its next read, and thousands
    /// of connections park on blocking queries. API requests are a few hundred bytes; the buffer
    /// still grows for large bodies.
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536)

    public func run() async throws {
        let registry = ConnectionRegistry(totalCap: { ConnectionBudget.totalCap(forLimit: ConnectionBudget.currentLimit()) },
                                          logger: logger)
        let group = MultiThreadedEventLoopGroup.singleton
        let server = ServerContext(table: table, maxBodyBytes: maxBodyBytes, limits: limits, registry: registry, group: group,
                                   metrics: metrics, logger: logger)
        let logger = logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Self.acceptBackoff(logger: logger))
                }
            }
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.recvAllocator, value: Self.receiveBuffers)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try Self.setUp(channel, server: server) }
            }
        let channel: any Channel
        switch listener {
        case .address(let host, let port):
            channel = try await bootstrap.bind(host: host, port: port).get()
        case .descriptor(let fd):
            channel = try await bootstrap.withBoundSocket(fd).get()
            logger.info("HTTP API listening on a socket passed by systemd", metadata: ["fd": "\(fd)"])
        }
        let port = channel.localAddress?.port ?? 0
        logger.debug("HTTP connection caps", metadata: [
            "total": "\(registry.totalCap())", "per_client": "\(limits().maxConnsPerClient)",
        ])
        let stoppedByCancellation: Bool = await withTaskGroup(of: Void.self) { group in
            // Reported from a child task: what waits on it (READY=1 after the first reconcile)
            // must not hold up the accept loop.
            group.addTask { await onListening(port) }
            let cancelled: Bool
            do {
                try await gracefulShutdown()
                cancelled = false
            } catch {
                cancelled = true
            }
            group.cancelAll()
            return cancelled
        }
        try? await channel.close()
        if stoppedByCancellation {
            registry.closeAll()
        } else {
            registry.quiesce()
            await registry.drained(within: drainLimit)
        }
    }

    /// The pipeline of an accepted connection, or a refusal (NIO then closes it unregistered).
    static func setUp(_ channel: any Channel, server: ServerContext) throws {
        let client = channel.remoteAddress?.ipAddress ?? "unknown"
        try server.registry.admit(channel, client: client, perClientCap: server.limits().maxConnsPerClient)
        do {
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
            try sync.addHandler(APIConnection(server: server, client: client))
        } catch {
            server.registry.remove(channel, client: client)
            throw error
        }
    }

    /// Out of descriptors (EMFILE, ENFILE) or kernel memory: stop accepting for a moment instead
    /// of retrying at once in a loop that takes a whole core.
    static func acceptBackoff(logger: Logger) -> AcceptBackoffHandler {
        AcceptBackoffHandler(shouldForwardIOErrorCaught: false) { error in
            logger.warning("cannot accept HTTP connections, pausing accept for 250ms", metadata: ["error": "\(error)"])
            return .milliseconds(250)
        }
    }
}
