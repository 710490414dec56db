// The deadlines of every HTTP connection on one event loop, served by one timer. NIO cancels a
// scheduled task by searching its queue, so a timer per connection makes ten thousand
// connections closing at once quadratic; here a connection's deadline is a stored value, and the
// one timer fires at the earliest deadline (coalesced) and closes what is due.

import NIOCore

/// What a connection shows its loop's clocks.
protocol ClockedConnection: AnyObject {
    /// When the connection must have made progress; `.distantFuture` while no clock runs.
    var deadline: NIODeadline { get }
    /// The deadline passed: the connection closes itself.
    func clockExpired()
}

/// Touched only on its own loop (asserted), so it is shared across threads without a lock.
final class ConnectionClocks: @unchecked Sendable {
    /// Deadlines closer together than this share one wake-up.
    static let coalescing = TimeAmount.milliseconds(20)

    private let loop: any EventLoop
    private var members: [ObjectIdentifier: any ClockedConnection] = [:]
    private var timer: Scheduled<Void>?
    private var timerAt = NIODeadline.distantFuture

    init(loop: any EventLoop) {
        self.loop = loop
    }

    func add(_ connection: any ClockedConnection) {
        loop.preconditionInEventLoop()
        members[ObjectIdentifier(connection)] = connection
        deadlineMoved(to: connection.deadline)
    }

    func remove(_ connection: any ClockedConnection) {
        loop.preconditionInEventLoop()
        members[ObjectIdentifier(connection)] = nil
        if members.isEmpty { stopTimer() }
    }

    /// A member's deadline changed. Only an earlier one needs the timer: a later one is found
    /// when the timer fires.
    func deadlineMoved(to deadline: NIODeadline) {
        loop.assertInEventLoop()
        guard deadline != .distantFuture, deadline + Self.coalescing < timerAt else { return }
        arm(at: deadline)
    }

    private func arm(at instant: NIODeadline) {
        timer?.cancel()
        timerAt = instant
        timer = loop.assumeIsolated().scheduleTask(deadline: instant) { [self] in fire() }
    }

    private func stopTimer() {
        timer?.cancel()
        timer = nil
        timerAt = .distantFuture
    }

    /// Closes every member whose deadline passed and sets the timer for the earliest one left.
    private func fire() {
        timer = nil
        timerAt = .distantFuture
        let now = NIODeadline.now()
        var due: [any ClockedConnection] = []
        var earliest = NIODeadline.distantFuture
        for member in members.values {
            let deadline = member.deadline
            if deadline <= now {
                due.append(member)
            } else if deadline < earliest {
                earliest = deadline
            }
        }
        for member in due { member.clockExpired() }
        if earliest != .distantFuture { arm(at: max(earliest, now + Self.coalescing)) }
    }
}
