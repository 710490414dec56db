// One accepted connection on an upstream listener: finds a healthy instance of the destination
// through the agent's health endpoint, dials it with TLS presenting the proxy's leaf, checks the
// server's SPIFFE ID is the destination's, then glues. Bytes read before that are held (bounded).

import ConnectdCore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

final class UpstreamConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private enum Phase { case discovering, connecting, glued, closed }

    private let upstream: UpstreamConfig
    private let runtime: ProxyRuntime
    private let agent: AgentClient
    private let metrics: ListenerMetrics
    private let dials: UpstreamMetrics
    private let logger: Logger
    private var phase = Phase.discovering
    private var held = HeldBytes()

    init(upstream: UpstreamConfig, runtime: ProxyRuntime, agent: AgentClient, metrics: ListenerMetrics, dials: UpstreamMetrics,
         logger: Logger) {
        self.metrics = metrics
        self.dials = dials
        self.upstream = upstream
        self.runtime = runtime
        self.agent = agent
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        // The instance watch usually knows the destination already: dial at once.
        if let instance = runtime.lastInstances(for: upstream.destinationName).randomElement() {
            dial(context, host: instance.host, port: instance.port)
            context.fireChannelActive()
            return
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let agent = agent
        let upstream = upstream
        let runtime = runtime
        Task {
            var outcome = await UpstreamConnection.discover(agent: agent, upstream: upstream)
            switch outcome {
            case .success(let instances): runtime.remember(instances: instances, for: upstream.destinationName)
            case .failure:
                // The agent is unreachable: keep using what it said last.
                let known = runtime.lastInstances(for: upstream.destinationName)
                if !known.isEmpty { outcome = .success(known) }
            }
            loop.execute {
                let (handler, context) = bound.value
                handler.discovered(outcome, context)
            }
        }
        context.fireChannelActive()
    }

    private func discovered(_ outcome: Result<[Instance], DiscoveryError>, _ context: ChannelHandlerContext) {
        guard phase == .discovering else { return }
        switch outcome {
        case .success(let instances):
            guard let instance = instances.randomElement() else {
                logger.warning("upstream connection closed: no healthy instance", metadata: ["destination": "\(upstream.destinationName)"])
                dials.dialFailures.increment()
                close(context)
                return
            }
            dial(context, host: instance.host, port: instance.port)
        case .failure(let error):
            logger.warning("upstream connection closed: discovery failed",
                           metadata: ["destination": "\(upstream.destinationName)", "error": "\(error)"])
            dials.dialFailures.increment()
            close(context)
        }
    }

    /// Healthy instances of the upstream's destination, from the agent.
    static func discover(agent: AgentClient, upstream: UpstreamConfig) async -> Result<[Instance], DiscoveryError> {
        var target = "/v1/health/connect/\(upstream.destinationName)?passing"
        if !upstream.datacenter.isEmpty { target += "&dc=\(upstream.datacenter)" }
        do {
            return .success(instances(try await agent.json(target).0))
        } catch {
            return .failure(DiscoveryError(description: "\(error)"))
        }
    }

    typealias Instance = ProxyRuntime.Instance

    struct DiscoveryError: Error, CustomStringConvertible {
        var description: String
    }

    /// Address and port of each entry of a health answer (service address, else node address).
    static func instances(_ answer: JSONValue) -> [Instance] {
        guard case .array(let entries) = answer else { return [] }
        return entries.compactMap { entry in
            guard let port = ProxyConfig.int(entry["Service"]?["Port"]), port > 0 else { return nil }
            var host = entry["Service"]?["Address"]?.stringValue ?? ""
            if host.isEmpty || host == "0.0.0.0" || host == "::" { host = entry["Node"]?["Address"]?.stringValue ?? "127.0.0.1" }
            return Instance(host: host, port: port)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !held.append(unwrapInboundIn(data)) {
            logger.warning("closing upstream connection: too much data before the destination was reached")
            close(context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { close(context) }

    private func close(_ context: ChannelHandlerContext) {
        phase = .closed
        held.removeAll()
        context.close(promise: nil)
    }

    private func dial(_ context: ChannelHandlerContext, host: String, port: Int) {
        guard let material = runtime.material else {
            close(context)
            return
        }
        phase = .connecting
        let loop = context.eventLoop
        let verified = loop.makePromise(of: Void.self)
        let expected = upstream.destinationName
        let trustDomain = material.trustDomain
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let logger = logger
        let dials = dials
        let started = ContinuousClock.now
        ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(Int64(upstream.connectTimeoutMs)))
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls = try NIOSSLClientHandler(context: material.clientContext, serverHostname: nil)
                    try channel.pipeline.syncOperations.addHandler(tls)
                    try channel.pipeline.syncOperations.addHandler(
                        ServerIdentityCheck(expectedService: expected, trustDomain: trustDomain, verified: verified))
                }
            }
            .connect(toHost: host, port: port)
            .flatMap { channel in verified.futureResult.map { channel } }
            .whenComplete { result in
                let (handler, context) = bound.value
                switch result {
                case .success(let remote):
                    dials.dialDuration.record(elapsed: ContinuousClock.now - started)
                    guard handler.phase == .connecting else {
                        remote.close(promise: nil)
                        return
                    }
                    handler.glue(context, to: remote)
                case .failure(let error):
                    logger.warning("upstream connection closed: cannot reach the destination",
                                   metadata: ["destination": "\(expected)", "address": "\(host):\(port)", "error": "\(error)"])
                    dials.dialFailures.increment()
                    handler.close(context)
                }
            }
    }

    private func glue(_ context: ChannelHandlerContext, to remote: any Channel) {
        if let check = try? remote.pipeline.syncOperations.handler(type: ServerIdentityCheck.self) {
            remote.pipeline.syncOperations.removeHandler(check, promise: nil)
        }
        phase = .glued
        if !GlueHandler.join(context, replacing: self, with: remote, held: held.buffers, metrics: metrics) { phase = .closed }
        held.removeAll()
    }
}

/// Completes `verified` once the TLS handshake is done and the server's certificate names the
/// expected service; fails it (and closes) otherwise.
final class ServerIdentityCheck: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    struct Mismatch: Error, CustomStringConvertible {
        var description: String
    }

    private let expectedService: String
    private let trustDomain: String
    private let verified: EventLoopPromise<Void>
    private var done = false

    init(expectedService: String, trustDomain: String, verified: EventLoopPromise<Void>) {
        self.expectedService = expectedService
        self.trustDomain = trustDomain
        self.verified = verified
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls, !done {
            done = true
            let peer = (try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self))?.peerCertificate
            let identity = peer.flatMap(TLSMaterial.identity(of:))
            if let identity, case .service(let host, _, _, let service)? = try? SpiffeID.parse(identity.uri),
               service == expectedService, host.lowercased() == trustDomain.lowercased() {
                verified.succeed(())
            } else {
                verified.fail(Mismatch(description: "the server presented \(identity?.uri ?? "no SPIFFE ID"), not service \(expectedService)"))
                context.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done {
            done = true
            verified.fail(error)
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            verified.fail(Mismatch(description: "connection closed during the TLS handshake"))
        }
        context.fireChannelInactive()
    }
}
