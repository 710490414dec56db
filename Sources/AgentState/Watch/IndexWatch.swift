// AgentState: the single source of truth for services, managed proxies and their tokens and ports;
// one monotonic change index; the watch primitive every blocking endpoint uses; durable records
// under data_dir. It must not touch HTTP or processes: those read snapshots and wait on the watch.

import Synchronization

/// How a wait on an ``IndexWatch`` ended.
public enum WatchOutcome: Sendable, Equatable {
    /// The index moved past the one waited on; carries the new index.
    case changed(UInt64)
    case timedOut
    /// The watch was shut down (the agent is stopping); callers answer with what they have.
    case shutDown
    case cancelled
}

/// Parks callers until a monotonic index moves past the one they saw, a deadline passes, or shutdown.
///
/// A waiter costs one continuation and one sleeping task for its deadline; no thread.
/// Advancing wakes only waiters whose index is behind the new one. ``shutdown()`` releases every
/// waiter at once and makes later waits return immediately, so long-polls never hold up a stop.
public final class IndexWatch: Sendable {
    private struct Waiter {
        let after: UInt64
        let continuation: CheckedContinuation<WatchOutcome, Never>
    }

    private struct State {
        var index: UInt64
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiterID: UInt64 = 0
        var isShutDown = false
    }

    private let state: Mutex<State>

    public init(index: UInt64 = 1) {
        state = Mutex(State(index: max(index, 1)))
    }

    /// The current index; never 0.
    public var index: UInt64 { state.withLock { $0.index } }

    /// Number of parked waiters (for status and tests).
    public var waiterCount: Int { state.withLock { $0.waiters.count } }

    public var isShutDown: Bool { state.withLock { $0.isShutDown } }

    /// Moves the index forward (never back) and wakes every waiter that was behind it.
    public func advance(to newIndex: UInt64) {
        let woken: [Waiter] = state.withLock { state in
            guard newIndex > state.index else { return [] }
            state.index = newIndex
            let ready = state.waiters.filter { $0.value.after < newIndex }
            for id in ready.keys { state.waiters.removeValue(forKey: id) }
            return Array(ready.values)
        }
        for waiter in woken { waiter.continuation.resume(returning: .changed(newIndex)) }
    }

    /// Waits until the index is greater than `after`, `timeout` passes, shutdown, or cancellation.
    /// Returns at once when the index is already past `after`.
    public func wait<C: Clock>(after: UInt64, timeout: Duration, clock: C = ContinuousClock()) async -> WatchOutcome
    where C.Duration == Duration {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let timer = Task {
            try? await clock.sleep(for: timeout)
            if !Task.isCancelled { self.resume(id, with: .timedOut) }
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<WatchOutcome, Never>) in
                let immediate: WatchOutcome? = state.withLock { state in
                    if state.isShutDown { return .shutDown }
                    if state.index > after { return .changed(state.index) }
                    if Task.isCancelled { return .cancelled }
                    state.waiters[id] = Waiter(after: after, continuation: continuation)
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            self.resume(id, with: .cancelled)
        }
    }

    private func resume(_ id: UInt64, with outcome: WatchOutcome) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.continuation.resume(returning: outcome)
    }

    /// Releases every waiter with `.shutDown`; later waits return `.shutDown` at once.
    public func shutdown() {
        let all: [Waiter] = state.withLock { state in
            state.isShutDown = true
            let all = Array(state.waiters.values)
            state.waiters.removeAll()
            return all
        }
        for waiter in all { waiter.continuation.resume(returning: .shutDown) }
    }
}
