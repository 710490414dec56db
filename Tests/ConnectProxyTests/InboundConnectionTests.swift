import Logging
import NIOCore
import NIOEmbedded
import Testing
@testable import ConnectProxy

/// An inbound connection's handler lives as long as its connection, not as long as its
/// handshake deadline (10 s): under a new-connection load the timers used to keep thousands of
/// closed connections alive.
struct InboundConnectionTests {
    @Test func aClosedConnectionIsFreedBeforeItsHandshakeDeadline() throws {
        let loop = EmbeddedEventLoop()
        weak var released: InboundConnection?
        do {
            let channel = EmbeddedChannel(loop: loop)
            let listener = PublicListenerConfig(bindAddress: "127.0.0.1", bindPort: 1, localServiceHost: "127.0.0.1", localServicePort: 2)
            let handler = InboundConnection(listener: listener, target: "db", agent: AgentClient(host: "127.0.0.1", port: 1, token: ""),
                                            runtime: ProxyRuntime(), metrics: ProxyMetrics(proxy: "db-proxy").listener("public"),
                                            logger: Logger(label: "test"))
            released = handler
            try channel.pipeline.syncOperations.addHandler(handler)
            // Closed; time does not move (finish() would run the timers and hide the leak).
            channel.close(promise: nil)
            loop.run()
        }
        #expect(released == nil, "the handshake timer still holds the closed connection's handler")
    }
}
