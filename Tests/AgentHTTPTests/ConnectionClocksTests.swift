@testable import AgentHTTP
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// The loop's one timer closes exactly the connections whose deadline passed, finds deadlines
/// that moved later when it fires, and follows one that moved earlier.
@Suite struct ConnectionClocksTests {
    final class Counter: Sendable {
        let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
    }

    /// Touched on the loop only, like a connection.
    final class Member: ClockedConnection, @unchecked Sendable {
        var deadline: NIODeadline
        let expired: Counter
        init(_ deadline: NIODeadline, expired: Counter) {
            self.deadline = deadline
            self.expired = expired
        }
        /// As a connection does: its clock stops, and it closes.
        func clockExpired() {
            guard deadline <= .now() else { return }
            deadline = .distantFuture
            expired.count.withLock { $0 += 1 }
        }
    }

    func waitFor(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return condition()
    }

    @Test func dueMembersExpireAndTheRestWait() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let soon = Counter(), later = Counter()
        let clocks = ConnectionClocks(loop: loop)
        let (early, late) = try loop.submit {
            let early = (0..<500).map { _ in Member(.now() + .milliseconds(50), expired: soon) }
            let late = (0..<500).map { _ in Member(.now() + .seconds(60), expired: later) }
            for member in early + late { clocks.add(member) }
            return (early, late)
        }.wait()
        #expect(waitFor(10) { soon.value == 500 })
        // The early ones expired once each; the late ones were looked at, not expired.
        Thread.sleep(forTimeInterval: 0.1)
        #expect(soon.value == 500)
        #expect(later.value == 0)
        // A deadline moved earlier is followed; removed members are no longer looked at.
        try loop.submit {
            for member in early { clocks.remove(member) }
            late[0].deadline = .now() + .milliseconds(30)
            clocks.deadlineMoved(to: late[0].deadline)
        }.wait()
        #expect(waitFor(10) { later.value == 1 })
        Thread.sleep(forTimeInterval: 0.1)
        #expect(soon.value == 500)
        #expect(later.value == 1)
        try loop.submit { for member in late { clocks.remove(member) } }.wait()
    }
}
