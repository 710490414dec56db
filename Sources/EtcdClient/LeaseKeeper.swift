// Keeps one etcd lease alive for as long as it runs: grants it, sends a keepalive every third of
// its TTL, and when etcd says the lease is gone (expired during an outage, revoked) grants a new
// one and hands it to `onNewLease`, which re-writes whatever was tied to the old one. While etcd
// is unreachable it keeps trying at the same pace. A graceful stop revokes the lease, so what
// was tied to it disappears at once instead of after the TTL.

import Logging
import ServiceLifecycle

public actor LeaseKeeper: Service {
    public enum State: Sendable, Equatable {
        case starting
        case held(id: Int64)
        /// etcd did not answer the last attempt; the lease may still be alive there.
        case unconfirmed(id: Int64?)
        case stopped
    }

    private let client: EtcdClient
    private let ttlSeconds: Int64
    private let onNewLease: @Sendable (Int64) async -> Void
    private let logger: Logger
    public private(set) var state = State.starting
    /// A round is under way (one at a time: two could both grant a lease).
    private var ticking = false

    public init(client: EtcdClient, ttlSeconds: Int64, logger: Logger, onNewLease: @escaping @Sendable (Int64) async -> Void) {
        self.client = client
        self.ttlSeconds = max(2, ttlSeconds)
        self.onNewLease = onNewLease
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await tick()
            // A graceful shutdown ends the wait at once.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(self.ttlSeconds * 1000 / 3)) }
        }
        // On a graceful stop: what was tied to the lease goes now, not after the TTL.
        if !Task.isCancelled, let id = currentID {
            _ = try? await client.revokeLease(LeaseRevokeRequest(id: id))
        }
        state = .stopped
    }

    private var currentID: Int64? {
        switch state {
        case .held(let id): id
        case .unconfirmed(let id): id
        case .starting, .stopped: nil
        }
    }

    /// A round now, not at the next third of the TTL (etcd is back after an outage: a lost lease
    /// is replaced, and what hangs off it re-written, at once).
    public func renewNow() async {
        guard state != .stopped else { return }
        await tick()
    }

    /// One round: renew the lease held, or grant one when there is none (or it is gone).
    func tick() async {
        guard !ticking else { return }
        ticking = true
        defer { ticking = false }
        do throws(EtcdError) {
            if let id = currentID {
                if try await client.keepAlive(LeaseKeepAliveRequest(id: id)).remainingTTL != nil {
                    state = .held(id: id)
                    return
                }
                logger.warning("the etcd lease is gone (expired or revoked); granting a new one", metadata: ["lease": "\(id)"])
            }
            let granted = try await client.grantLease(LeaseGrantRequest(ttlSeconds: ttlSeconds))
            guard let id = granted.id?.value, id != 0 else {
                logger.warning("etcd granted no lease", metadata: ["error": "\(granted.error ?? "no ID")"])
                return
            }
            state = .held(id: id)
            await onNewLease(id)
        } catch {
            if case .unconfirmed = state {} else { logger.warning("cannot renew the etcd lease", metadata: ["error": "\(error)"]) }
            state = .unconfirmed(id: currentID)
        }
    }
}
