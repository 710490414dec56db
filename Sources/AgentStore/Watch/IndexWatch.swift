// AgentStore: the durable store interface and its file implementation (transactional, under
// data_dir), and the watch and blocking-query primitives every blocking endpoint uses. It knows
// nothing of services, certificates or HTTP: those are values its owner (AgentState) commits.

import HeapModule
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
/// Two ways in, one mechanism: ``park(after:timeout:_:)`` registers a callback (for code on an
/// event loop, which must not block and has no task to suspend), and ``wait(after:timeout:)``
/// suspends a task by parking its continuation the same way. A waiter costs one callback and one
/// dictionary entry; all deadlines share one timer task
/// (a min-heap of deadlines), so ten thousand waiters cost no threads and no per-waiter tasks.
/// Advancing wakes only waiters whose index is behind the new one. ``shutdown()`` releases every
/// waiter at once and makes later waits return immediately, so long-polls never hold up a stop.
public final class IndexWatch: Sendable {
    private struct Waiter {
        let after: UInt64
        let wake: @Sendable (WatchOutcome) -> Void
    }

    /// Identifies a parked callback, for ``unpark(_:)``.
    public struct Ticket: Sendable, Hashable, Comparable {
        fileprivate let id: UInt64
        /// Later parks on the same watch compare greater.
        public static func < (lhs: Ticket, rhs: Ticket) -> Bool { lhs.id < rhs.id }
    }

    private struct Deadline: Comparable {
        let instant: ContinuousClock.Instant
        let id: UInt64
        static func < (lhs: Deadline, rhs: Deadline) -> Bool { lhs.instant < rhs.instant }
    }

    private struct State {
        var index: UInt64
        var waiters: [UInt64: Waiter] = [:]
        /// Deadlines of waiters; entries of waiters already gone are skipped when they come up.
        var deadlines = Heap<Deadline>()
        var nextWaiterID: UInt64 = 0
        var isShutDown = false
        /// The instant the timer task sleeps until, and the task.
        var timerInstant: ContinuousClock.Instant?
        var timer: Task<Void, Never>?
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
        for waiter in woken { waiter.wake(.changed(newIndex)) }
    }

    /// Calls `wake` once, from whichever thread ends the wait, when the index is greater than
    /// `after`, `timeout` passes, or shutdown. When the outcome is already known (index past
    /// `after`, shut down, no time left) it is returned and `wake` is never called; otherwise the
    /// ticket can take the callback back with ``unpark(_:)``.
    public func park(after: UInt64, timeout: Duration,
                     _ wake: @escaping @Sendable (WatchOutcome) -> Void) -> Result<Ticket, ImmediateOutcome> {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var rearm = false
        let result: Result<Ticket, ImmediateOutcome> = state.withLock { state in
            if state.isShutDown { return .failure(ImmediateOutcome(outcome: .shutDown)) }
            if state.index > after { return .failure(ImmediateOutcome(outcome: .changed(state.index))) }
            if timeout <= .zero { return .failure(ImmediateOutcome(outcome: .timedOut)) }
            state.nextWaiterID += 1
            let id = state.nextWaiterID
            state.waiters[id] = Waiter(after: after, wake: wake)
            state.deadlines.insert(Deadline(instant: deadline, id: id))
            if state.timerInstant.map({ deadline < $0 }) ?? true {
                state.timerInstant = deadline
                rearm = true
            }
            return .success(Ticket(id: id))
        }
        if rearm { armTimer(until: deadline) }
        return result
    }

    /// The outcome of a ``park(after:timeout:_:)`` that did not need to park.
    public struct ImmediateOutcome: Error, Sendable {
        public let outcome: WatchOutcome
    }

    /// Takes a parked callback back without calling it (its client went away). Returns false when
    /// the callback has already been called or is being called.
    @discardableResult
    public func unpark(_ ticket: Ticket) -> Bool {
        state.withLock { $0.waiters.removeValue(forKey: ticket.id) } != nil
    }

    /// Waits until the index is greater than `after`, `timeout` passes, shutdown, or cancellation.
    /// Returns at once when the index is already past `after`.
    public func wait(after: UInt64, timeout: Duration) async -> WatchOutcome {
        // The ticket once parked, or that cancellation came first.
        let parking = Mutex<(ticket: Ticket?, cancelled: Bool)>((nil, false))
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<WatchOutcome, Never>) in
                switch park(after: after, timeout: timeout, { continuation.resume(returning: $0) }) {
                case .success(let ticket):
                    let cancelled = parking.withLock { parking in
                        parking.ticket = ticket
                        return parking.cancelled
                    }
                    if cancelled { resume(ticket.id, with: .cancelled) }
                case .failure(let immediate):
                    continuation.resume(returning: immediate.outcome)
                }
            }
        } onCancel: {
            let ticket = parking.withLock { parking in
                parking.cancelled = true
                return parking.ticket
            }
            if let ticket { self.resume(ticket.id, with: .cancelled) }
        }
    }

    /// Starts the shared timer for `instant`, replacing a later one.
    private func armTimer(until instant: ContinuousClock.Instant) {
        let task = Task { [weak self] in
            try? await Task.sleep(until: instant, clock: .continuous)
            guard !Task.isCancelled else { return }
            self?.expire()
        }
        let previous: Task<Void, Never>? = state.withLock { state in
            // Another waiter may have armed an even earlier timer meanwhile: keep that one.
            guard state.timerInstant == instant else { return task }
            defer { state.timer = task }
            return state.timer
        }
        previous?.cancel()
    }

    /// Times out every waiter whose deadline has passed and re-arms for the next deadline.
    private func expire() {
        let now = ContinuousClock.now
        var next: ContinuousClock.Instant?
        let expired: [Waiter] = state.withLock { state in
            var expired: [Waiter] = []
            while let first = state.deadlines.min, first.instant <= now {
                _ = state.deadlines.removeMin()
                if let waiter = state.waiters.removeValue(forKey: first.id) { expired.append(waiter) }
            }
            // Drop heap entries of waiters that are already gone, then pick the next live deadline.
            while let first = state.deadlines.min, state.waiters[first.id] == nil { _ = state.deadlines.removeMin() }
            next = state.deadlines.min?.instant
            state.timerInstant = next
            state.timer = nil
            return expired
        }
        for waiter in expired { waiter.wake(.timedOut) }
        if let next { armTimer(until: next) }
    }

    private func resume(_ id: UInt64, with outcome: WatchOutcome) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.wake(outcome)
    }

    /// Releases every waiter with `.shutDown`; later waits return `.shutDown` at once.
    public func shutdown() {
        let (all, timer): ([Waiter], Task<Void, Never>?) = state.withLock { state in
            state.isShutDown = true
            let all = Array(state.waiters.values)
            state.waiters.removeAll()
            state.deadlines = Heap()
            let timer = state.timer
            state.timer = nil
            state.timerInstant = nil
            return (all, timer)
        }
        timer?.cancel()
        for waiter in all { waiter.wake(.shutDown) }
    }
}
