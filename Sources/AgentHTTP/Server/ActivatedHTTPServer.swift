// Serving the API on a listening socket systemd passed in (socket activation, LISTEN_FDS with the
// name `http`). Hummingbird's own server only binds host:port or a unix path, so this runs the
// same HTTP/1.1 channel handler and responder on an inherited descriptor.

import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public struct ActivatedHTTPServer: Service, CustomStringConvertible {
    let descriptor: Int32
    let table: RouteTable
    let maxBodyBytes: @Sendable () -> Int
    let logger: Logger
    let onListening: @Sendable (Int) async -> Void

    public var description: String { "ActivatedHTTPServer(fd \(descriptor))" }

    public init(descriptor: Int32, table: RouteTable, maxBodyBytes: @escaping @Sendable () -> Int, logger: Logger,
                onListening: @escaping @Sendable (Int) async -> Void) {
        self.descriptor = descriptor
        self.table = table
        self.maxBodyBytes = maxBodyBytes
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let table = table
        let maxBodyBytes = maxBodyBytes
        let logger = logger
        let dates = DateHeader()
        let http = HTTP1Channel(responder: { request, writer, channel in
            let context = AgentRequestContext(source: ApplicationRequestContextSource(channel: channel, logger: logger))
            var response = await AgentHTTPServer.respond(to: request, context: context, table: table,
                                                         maxBodyBytes: maxBodyBytes(), logger: logger)
            response.headers[.date] = dates.now()
            try await writer.write(response: response.head, body: response.body)
        }, configuration: HTTP1Channel.Configuration(additionalChannelHandlers: [
            FastPathHandler(table: table, maxBodyBytes: maxBodyBytes, logger: logger, dates: dates),
        ]))
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .bind(descriptor) { channel in http.setup(channel: channel, logger: logger) }
        let port = server.channel.localAddress?.port ?? 0
        logger.info("HTTP API listening on a socket passed by systemd", metadata: ["fd": "\(descriptor)", "port": "\(port)"])
        await onListening(port)
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await http.handle(value: connection, logger: logger) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }
}

/// The RFC 9110 Date header value, formatted once per second.
final class DateHeader: Sendable {
    private let cached = Mutex<(second: time_t, text: String)>((-1, ""))

    func now() -> String {
        var time = time_t(Glibc.time(nil))
        if let text = cached.withLock({ $0.second == time ? $0.text : nil }) { return text }
        var parts = tm()
        gmtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        let text = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        cached.withLock { $0 = (time, text) }
        return text
    }
}
