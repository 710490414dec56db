// The CA's background work as one service: renew leaves when due, re-issue them after a root
// change, prune rotated-out roots. It wakes on a roots change or the next due time.

import AgentState
import CertificateAuthority
import Foundation
import Logging
import ServiceLifecycle

public struct CAMaintenanceService: Service {
    let state: AgentState
    let leaves: LeafCache
    let logger: Logger
    /// The longest sleep between checks (renewal times can move earlier without a roots change
    /// only through new entries, whose renewal is never sooner than 60 % of their lifetime).
    let maximumSleep: Duration

    public init(state: AgentState, leaves: LeafCache, logger: Logger, maximumSleep: Duration = .seconds(1)) {
        self.state = state
        self.leaves = leaves
        self.logger = logger
        self.maximumSleep = maximumSleep
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var seenRoots = state.rootsWatch.index
            var activeKey = state.snapshot.ca.activeSigningKeyID
            while !Task.isCancelled {
                let now = Date()
                let nextLeaf = leaves.renewDue(now: now)
                var nextPrune: Date?
                do {
                    nextPrune = try await state.pruneCA(now: now)
                } catch {
                    logger.error("cannot prune CA roots", metadata: ["error": "\(error)"])
                }
                let next = [nextLeaf, nextPrune].compactMap { $0 }.min()
                var sleep = maximumSleep
                if let next {
                    let seconds = max(0, next.timeIntervalSince(Date()))
                    sleep = min(sleep, .milliseconds(Int64(seconds * 1000) + 1))
                }
                let outcome = await state.rootsWatch.wait(after: seenRoots, timeout: sleep)
                switch outcome {
                case .changed(let index):
                    seenRoots = index
                    let key = state.snapshot.ca.activeSigningKeyID
                    if key != activeKey {
                        activeKey = key
                        leaves.rootsChanged()
                    }
                case .timedOut:
                    continue
                case .shutDown:
                    // The watches are released early in a stop; finish when the group asks.
                    try? await gracefulShutdown()
                    return
                case .cancelled:
                    return
                }
            }
        }
    }
}
