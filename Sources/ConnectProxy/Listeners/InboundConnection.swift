// One accepted connection on the public listener, after the TLS handler: waits for the
// handshake (bounded), asks the agent to authorize the client's SPIFFE ID for the target, dials
// the local service, then glues the two. Bytes read before that are held (bounded).

import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

final class InboundConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private enum Phase { case handshaking, authorizing, connecting, glued, closed }

    private let listener: PublicListenerConfig
    private let target: String
    private let agent: AgentClient
    private let runtime: ProxyRuntime
    private let metrics: ListenerMetrics
    private let logger: Logger
    private var phase = Phase.handshaking
    private var held = HeldBytes()
    /// The handshake's deadline; cancelled once the handshake is over, so the timer does not keep
    /// this handler (and its channel) alive after the connection is gone.
    private var handshakeDeadline: Scheduled<Void>?

    init(listener: PublicListenerConfig, target: String, agent: AgentClient, runtime: ProxyRuntime, metrics: ListenerMetrics,
         logger: Logger) {
        self.metrics = metrics
        self.listener = listener
        self.target = target
        self.agent = agent
        self.runtime = runtime
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        handshakeDeadline = context.eventLoop.scheduleTask(in: .milliseconds(Int64(listener.handshakeTimeoutMs))) {
            let (handler, context) = bound.value
            if handler.phase == .handshaking {
                handler.logger.info("closing inbound connection: TLS handshake timed out")
                handler.metrics.handshakeFailures.increment()
                handler.close(context)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !held.append(unwrapInboundIn(data)) {
            logger.warning("closing inbound connection: too much data before it was authorized")
            close(context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { cancelDeadline() }

    private func cancelDeadline() {
        handshakeDeadline?.cancel()
        handshakeDeadline = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls, phase == .handshaking {
            cancelDeadline()
            authorize(context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if phase == .handshaking {
            // A bare TCP connect (the agent's listener check) ends with EOF: not worth a line.
            let quiet = "\(error)".contains("EOF during handshake")
            logger.log(level: quiet ? .debug : .info, "inbound TLS handshake failed", metadata: ["error": "\(error)"])
            if !quiet { metrics.handshakeFailures.increment() }
        }
        close(context)
    }

    private func close(_ context: ChannelHandlerContext) {
        phase = .closed
        cancelDeadline()
        held.removeAll()
        context.close(promise: nil)
    }

    private func authorize(_ context: ChannelHandlerContext) {
        phase = .authorizing
        guard let tls = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
              let peer = tls.peerCertificate, let identity = TLSMaterial.identity(of: peer) else {
            logger.info("closing inbound connection: the client certificate has no SPIFFE URI")
            metrics.deniedWithoutIdentity.increment()
            close(context)
            return
        }
        if let cached = runtime.cachedDecision(for: identity.uri, serial: identity.serial, target: target) {
            decided(.success(cached), identity: identity, context)
            return
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let (agent, target, runtime) = (agent, target, runtime)
        Task {
            let outcome: Result<(authorized: Bool, reason: String), any Error>
            do {
                let index = runtime.intentionsIndex
                let answer = try await agent.authorize(target: target, clientURI: identity.uri, serial: identity.serial)
                runtime.remember(decision: answer, for: identity.uri, target: target)
                runtime.cache(decision: answer, for: identity.uri, serial: identity.serial, target: target, index: index)
                outcome = .success(answer)
            } catch let error as AgentClient.Failure where error.status != 0 {
                // The agent answered (a 403, a 400): that is the answer.
                outcome = .failure(error)
            } catch {
                // The agent is unreachable: a recent answer for this client stands in; otherwise refuse.
                if let known = runtime.lastDecision(for: identity.uri, target: target) {
                    outcome = .success(known)
                } else {
                    outcome = .failure(error)
                }
            }
            loop.execute {
                let (handler, context) = bound.value
                handler.decided(outcome, identity: identity, context)
            }
        }
    }

    private func decided(_ outcome: Result<(authorized: Bool, reason: String), any Error>, identity: (uri: String, serial: String),
                         _ context: ChannelHandlerContext) {
        guard phase == .authorizing else { return }
        switch outcome {
        case .success(let answer) where answer.authorized:
            logger.debug("inbound connection authorized", metadata: ["client": "\(identity.uri)", "reason": "\(answer.reason)"])
            connectLocal(context)
        case .success(let answer):
            logger.info("inbound connection denied", metadata: ["client": "\(identity.uri)", "reason": "\(answer.reason)"])
            metrics.deniedByIntention.increment()
            close(context)
        case .failure(let error):
            logger.warning("inbound connection closed: authorize failed", metadata: ["client": "\(identity.uri)", "error": "\(error)"])
            metrics.authorizeFailed.increment()
            close(context)
        }
    }

    private func connectLocal(_ context: ChannelHandlerContext) {
        phase = .connecting
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let (host, port, logger) = (listener.localServiceHost, listener.localServicePort, logger)
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(.milliseconds(Int64(listener.localConnectTimeoutMs)))
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(toHost: host, port: port)
            .whenComplete { result in
                let (handler, context) = bound.value
                switch result {
                case .success(let local):
                    guard handler.phase == .connecting else {
                        local.close(promise: nil)
                        return
                    }
                    handler.glue(context, to: local)
                case .failure(let error):
                    logger.warning("inbound connection closed: cannot reach the local service",
                                   metadata: ["address": "\(host):\(port)", "error": "\(error)"])
                    handler.close(context)
                }
            }
    }

    private func glue(_ context: ChannelHandlerContext, to local: any Channel) {
        phase = .glued
        if !GlueHandler.join(context, replacing: self, with: local, held: held.buffers, metrics: metrics) { phase = .closed }
        held.removeAll()
    }
}
