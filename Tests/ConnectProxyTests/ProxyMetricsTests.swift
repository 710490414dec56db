@testable import ConnectProxy
import ConnectdCore
import NIOCore
import NIOPosix
import Synchronization
import Testing

@Suite struct ProxyMetricsTests {
    func answer(_ config: String) throws -> ProxyConfig {
        try ProxyConfig(agentAnswer: try JSONParser.parse(Array("""
        {"TargetServiceName": "db", "Config": {"bind_port": 21000, "local_service_address": "127.0.0.1:8081"\(config)}}
        """.utf8)))
    }

    @Test func prometheusBindAddressIsReadAndChecked() throws {
        #expect(try answer("").prometheusBindAddress == nil, "off by default")
        #expect(try answer(#", "prometheus_bind_addr": "127.0.0.1:9102""#).prometheusBindAddress == MetricsAddress(host: "127.0.0.1", port: 9102))
        #expect(try answer(#", "prometheus_bind_addr": "[::1]:9102""#).prometheusBindAddress?.description == "[::1]:9102")
        for bad in [#""localhost:9102""#, #""127.0.0.1""#, #""127.0.0.1:0""#, "9102"] {
            #expect(throws: ProxyConfig.Invalid.self, "\(bad)") { try answer(#", "prometheus_bind_addr": \#(bad)"#) }
        }
    }

    @Test func listenerHandlesRecordAndServeAsPrometheusText() async throws {
        let metrics = ProxyMetrics(proxy: "db-proxy")
        let public_ = metrics.listener("public")
        #expect(metrics.listener("public").accepted === public_.accepted, "one set of handles per listener")
        public_.accepted.increment()
        public_.received.increment(by: 120)
        public_.deniedByIntention.increment()
        metrics.upstream("db").dialFailures.increment()
        metrics.agentCallFailed(.call)

        let server = try await MetricsEndpoint.bind(MetricsAddress(host: "127.0.0.1", port: 0), hub: metrics.hub,
                                                    group: MultiThreadedEventLoopGroup.singleton)
        defer { server.close(promise: nil) }
        // Two pipelined requests on one connection: the answers come back in order.
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: server.localAddress?.port ?? 0).get()
        let collected = Collected()
        try await client.pipeline.addHandler(collected)
        try await client.writeAndFlush(ByteBuffer(string: "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        try await client.closeFuture.get()
        let output = collected.text.withLock { $0 }
        #expect(output.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(output)")
        #expect(output.contains("content-type: text/plain; version=0.0.4; charset=utf-8") || output.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"))
        #expect(output.contains(#"connectd_proxy_connections_accepted_total{proxy="db-proxy",listener="public"} 1"#), "\(output)")
        #expect(output.contains(#"connectd_proxy_received_bytes_total{proxy="db-proxy",listener="public"} 120"#))
        #expect(output.contains(#"connectd_proxy_inbound_denied_total{proxy="db-proxy",reason="intention"} 1"#))
        #expect(output.contains(#"connectd_proxy_upstream_dial_failures_total{proxy="db-proxy",upstream="db"} 1"#))
        #expect(output.contains(#"connectd_proxy_agent_call_errors_total{proxy="db-proxy",kind="call"} 1"#))
        #expect(output.contains("HTTP/1.1 404 Not Found"), "\(output)")
        #expect(output.firstRange(of: "200 OK")!.lowerBound < output.firstRange(of: "404 Not Found")!.lowerBound, "in request order")
    }
}

/// Everything a client channel reads, as text.
final class Collected: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let text = Mutex("")

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        text.withLock { $0 += String(buffer: buffer) }
    }
}
