// Sends sd_notify messages from one thread of its own, so the agent never waits on systemd: a
// notify socket nobody drains blocks that thread, not a stop, a reload or the event loops.
// Messages keep their order; status-only lines and watchdog pings coalesce while one is pending.

import CSystemd
import Foundation
import Synchronization

final class NotifySender: Sendable {
    /// What a message is, for coalescing: a newer status line replaces an unsent one, a second
    /// ping is pointless while one waits; state changes (READY, RELOADING, STOPPING) always go.
    enum Kind: Sendable, Equatable {
        case status
        case watchdog
        case state
    }

    private struct Queue {
        var pending: [(Kind, String)] = []
        /// The sender thread exists (it starts with the first message).
        var started = false
        /// A message is being handed to libsystemd right now.
        var sending = false
    }

    /// Beyond this many unsent state messages the oldest are dropped: a socket stuck that long
    /// has no reader to tell.
    private static let limit = 64

    private let queue = Mutex(Queue())
    private let wake = DispatchSemaphore(value: 0)

    static let shared = NotifySender()

    /// Queues `message`; returns at once.
    func send(_ message: String, kind: Kind) {
        let start = queue.withLock { queue -> Bool in
            if kind != .state, let index = queue.pending.lastIndex(where: { $0.0 == kind }),
               !queue.pending[index...].contains(where: { $0.0 == .state }) {
                queue.pending[index].1 = message
            } else {
                queue.pending.append((kind, message))
                if queue.pending.count > Self.limit { queue.pending.removeFirst() }
            }
            defer { queue.started = true }
            return !queue.started
        }
        if start {
            let thread = Thread { [self] in loop() }
            thread.name = "sd_notify"
            thread.start()
        }
        wake.signal()
    }

    /// Waits up to `limit` for every queued message to be handed to systemd (before the process
    /// exits); true when the queue is empty.
    func flush(within limit: Duration) -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if queue.withLock({ $0.pending.isEmpty && !$0.sending }) { return true }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return false
    }

    private func loop() {
        while true {
            wake.wait()
            while let message = next() {
                _ = sd_notify(0, message)
                queue.withLock { $0.sending = false }
            }
        }
    }

    private func next() -> String? {
        queue.withLock { queue in
            guard !queue.pending.isEmpty else { return nil }
            queue.sending = true
            return queue.pending.removeFirst().1
        }
    }
}
