// Every open HTTP connection of one server: admission against the per-client and total caps,
// and the list a stop quiesces and, after the drain, closes. Adding and removing a connection is
// a dictionary operation, so ten thousand connections closing at once cost linear time.

import Logging
import NIOCore
import Synchronization

final class ConnectionRegistry: Sendable {
    /// Why a connection was not admitted.
    enum Refusal: Error, Equatable {
        case overClientCap(client: String, cap: Int)
        case overTotalCap(cap: Int)
        case stopping
    }

    private enum Phase {
        case serving
        /// Stopping: no admissions; `drained` resumes when the last connection goes.
        case draining(CheckedContinuation<Void, Never>?)
        case stopped
    }

    private struct State {
        var phase = Phase.serving
        var perClient: [String: Int] = [:]
        var channels: [ObjectIdentifier: any Channel] = [:]
        /// When a refusal was last logged, so a flood logs one line per interval, not one per connection.
        var lastWarning: ContinuousClock.Instant?
        var refusedSinceWarning = 0
    }

    private let state = Mutex(State())
    /// Read at every admission: the descriptor limit can change under a running process (prlimit).
    let totalCap: @Sendable () -> Int
    private let logger: Logger

    init(totalCap: @escaping @Sendable () -> Int, logger: Logger) {
        self.totalCap = totalCap
        self.logger = logger
    }

    var count: Int { state.withLock { $0.channels.count } }

    /// Admits `channel` from `client` unless a cap is reached; the caller must ``remove(_:client:)``
    /// an admitted channel when it closes.
    func admit(_ channel: any Channel, client: String, perClientCap: Int) throws(Refusal) {
        let totalCap = totalCap()
        let outcome: Result<Void, Refusal> = state.withLock { state in
            guard case .serving = state.phase else { return .failure(.stopping) }
            if state.channels.count >= totalCap { return .failure(.overTotalCap(cap: totalCap)) }
            let open = state.perClient[client, default: 0]
            if perClientCap > 0, open >= perClientCap { return .failure(.overClientCap(client: client, cap: perClientCap)) }
            state.perClient[client] = open + 1
            state.channels[ObjectIdentifier(channel)] = channel
            return .success(())
        }
        if case .failure(let refusal) = outcome {
            warn(refusal)
            throw refusal
        }
    }

    func remove(_ channel: any Channel, client: String) {
        let drained: CheckedContinuation<Void, Never>? = state.withLock { state in
            guard state.channels.removeValue(forKey: ObjectIdentifier(channel)) != nil else { return nil }
            if let open = state.perClient[client], open > 1 {
                state.perClient[client] = open - 1
            } else {
                state.perClient.removeValue(forKey: client)
            }
            guard state.channels.isEmpty, case .draining(let waiter) = state.phase else { return nil }
            state.phase = .draining(nil)
            return waiter
        }
        drained?.resume()
    }

    /// Stops admitting and asks every connection to finish its current answer and close.
    func quiesce() {
        let channels: [any Channel] = state.withLock { state in
            if case .serving = state.phase { state.phase = .draining(nil) }
            return Array(state.channels.values)
        }
        for channel in channels {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    /// Returns when every connection has closed, or after `limit` (then the rest are closed).
    func drained(within limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let now: Bool = self.state.withLock { state in
                        if state.channels.isEmpty { return true }
                        guard case .draining(nil) = state.phase else { return true }
                        state.phase = .draining(continuation)
                        return false
                    }
                    if now { continuation.resume() }
                }
            }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
            // Whichever finished first, nobody waits any more; a late drain must not resume twice.
            let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
                defer { state.phase = .stopped }
                if case .draining(let waiter) = state.phase { return waiter }
                return nil
            }
            waiter?.resume()
        }
        closeAll()
    }

    /// Closes every connection now (a stop by cancellation, or after the drain limit).
    func closeAll() {
        let channels: [any Channel] = state.withLock { state in
            state.phase = .stopped
            return Array(state.channels.values)
        }
        for channel in channels { channel.close(promise: nil) }
    }

    private func warn(_ refusal: Refusal) {
        let now = ContinuousClock.now
        let refused: Int? = state.withLock { state in
            state.refusedSinceWarning += 1
            if let last = state.lastWarning, now - last < .seconds(10) { return nil }
            state.lastWarning = now
            defer { state.refusedSinceWarning = 0 }
            return state.refusedSinceWarning
        }
        guard let refused else { return }
        switch refusal {
        case .overClientCap(let client, let cap):
            logger.warning("closing new HTTP connections from \(client): it has \(cap) open (limits.http_max_conns_per_client)",
                           metadata: ["refused": "\(refused)"])
        case .overTotalCap(let cap):
            logger.warning("closing new HTTP connections: \(cap) are open, the most the descriptor limit allows while keeping a reserve for proxies (raise LimitNOFILE)",
                           metadata: ["refused": "\(refused)"])
        case .stopping:
            break
        }
    }
}
