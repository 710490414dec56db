import AgentState
import AgentStore
import Testing

@Suite struct IndexWatchTests {
    @Test func indexIsNeverZero() {
        #expect(IndexWatch(index: 0).index == 1)
    }

    @Test func returnsAtOnceWhenAlreadyPast() async {
        let watch = IndexWatch(index: 5)
        #expect(await watch.wait(after: 4, timeout: .seconds(60)) == .changed(5))
    }

    @Test func wakesOnAdvance() async {
        let watch = IndexWatch(index: 5)
        async let outcome = watch.wait(after: 5, timeout: .seconds(60))
        while watch.waiterCount == 0 { await Task.yield() }
        watch.advance(to: 6)
        #expect(await outcome == .changed(6))
        #expect(watch.waiterCount == 0)
    }

    @Test func wakesOnlyWaitersBehindTheNewIndex() async {
        let watch = IndexWatch(index: 5)
        let ahead = Task { await watch.wait(after: 10, timeout: .seconds(60)) }
        let behind = Task { await watch.wait(after: 5, timeout: .seconds(60)) }
        while watch.waiterCount < 2 { await Task.yield() }
        watch.advance(to: 7)
        #expect(await behind.value == .changed(7))
        #expect(watch.waiterCount == 1)
        watch.advance(to: 11)
        #expect(await ahead.value == .changed(11))
    }

    @Test func neverMovesBackwards() {
        let watch = IndexWatch(index: 9)
        watch.advance(to: 3)
        #expect(watch.index == 9)
    }

    @Test func timesOut() async {
        let watch = IndexWatch(index: 1)
        #expect(await watch.wait(after: 1, timeout: .milliseconds(20)) == .timedOut)
        #expect(watch.waiterCount == 0)
    }

    @Test func oneSharedTimerExpiresEveryDeadlineInOrder() async {
        let watch = IndexWatch(index: 1)
        let clock = ContinuousClock()
        let start = clock.now
        // A long wait first, then shorter ones: the timer must re-arm for the earlier deadlines.
        let long = Task { (await watch.wait(after: 1, timeout: .milliseconds(600)), clock.now) }
        while watch.waiterCount < 1 { await Task.yield() }
        let short = (0..<20).map { i in Task { (await watch.wait(after: 1, timeout: .milliseconds(50 + i * 10)), clock.now) } }
        for (offset, waiter) in short.enumerated() {
            let (outcome, at) = await waiter.value
            #expect(outcome == .timedOut)
            #expect(start.duration(to: at) >= .milliseconds(50 + offset * 10))
            #expect(start.duration(to: at) < .milliseconds(550), "waiter \(offset) expired late")
        }
        let (outcome, at) = await long.value
        #expect(outcome == .timedOut)
        #expect(start.duration(to: at) >= .milliseconds(600))
        #expect(watch.waiterCount == 0)
    }

    @Test func wokenWaitersDoNotDisturbLaterTimeouts() async {
        let watch = IndexWatch(index: 1)
        let woken = (0..<100).map { _ in Task { await watch.wait(after: 1, timeout: .milliseconds(50)) } }
        while watch.waiterCount < 100 { await Task.yield() }
        watch.advance(to: 2)
        for waiter in woken { #expect(await waiter.value == .changed(2)) }
        #expect(await watch.wait(after: 2, timeout: .milliseconds(120)) == .timedOut)
    }

    @Test func shutdownReleasesEveryWaiterAndLaterWaits() async {
        let watch = IndexWatch(index: 1)
        let waiters = (0..<50).map { _ in Task { await watch.wait(after: 1, timeout: .seconds(600)) } }
        while watch.waiterCount < 50 { await Task.yield() }
        watch.shutdown()
        for waiter in waiters { #expect(await waiter.value == .shutDown) }
        #expect(await watch.wait(after: 1, timeout: .seconds(600)) == .shutDown)
    }

    @Test func cancellationEndsTheWait() async {
        let watch = IndexWatch(index: 1)
        let waiter = Task { await watch.wait(after: 1, timeout: .seconds(600)) }
        while watch.waiterCount == 0 { await Task.yield() }
        waiter.cancel()
        #expect(await waiter.value == .cancelled)
        #expect(watch.waiterCount == 0)
    }
}

struct Answer: BlockingResult {
    var resourceIndex: UInt64
    var contentHash: String
}

@Suite struct BlockingQueryTests {
    @Test func answersAtOnceWithoutCondition() async throws {
        let watch = IndexWatch(index: 3)
        let result = try await BlockingQuery.run(watch: watch, condition: .none, wait: .seconds(60)) {
            Answer(resourceIndex: 3, contentHash: "a")
        }
        #expect(result.contentHash == "a")
    }

    @Test func hashBlockingReturnsWhenTheHashChanges() async throws {
        let watch = IndexWatch(index: 3)
        let source = HashSource("a")
        let query = Task {
            try await BlockingQuery.run(watch: watch, condition: .hash("a"), wait: .seconds(60)) {
                Answer(resourceIndex: watch.index, contentHash: source.value)
            }
        }
        while watch.waiterCount == 0 { await Task.yield() }
        watch.advance(to: 4)  // a change that leaves the hash alone: the query parks again
        while watch.waiterCount == 0 { await Task.yield() }
        source.value = "b"
        watch.advance(to: 5)
        #expect(try await query.value.contentHash == "b")
    }

    @Test func indexBlockingTimesOutWithTheSameAnswer() async throws {
        let watch = IndexWatch(index: 3)
        let result = try await BlockingQuery.run(watch: watch, condition: .index(3), wait: .milliseconds(30)) {
            Answer(resourceIndex: 3, contentHash: "a")
        }
        #expect(result.resourceIndex == 3)
    }

    @Test func differentHashAnswersAtOnce() async throws {
        let watch = IndexWatch(index: 3)
        let result = try await BlockingQuery.run(watch: watch, condition: .hash("123456789abcd"), wait: .seconds(600)) {
            Answer(resourceIndex: 3, contentHash: "a")
        }
        #expect(result.contentHash == "a")
    }

    @Test func aParkedQueryAnswersOnceByCallbackWithoutATask() async throws {
        let watch = IndexWatch(index: 3)
        let source = HashSource("a")
        let (answers, sink) = AsyncStream.makeStream(of: String.self)
        let start = BlockingQuery.start(watch: watch, condition: .hash("a"), wait: .seconds(60),
                                        evaluate: { Answer(resourceIndex: watch.index, contentHash: source.value) },
                                        deliver: { sink.yield((try? $0.get())?.contentHash ?? "error") })
        guard case .parked = start else { Issue.record("expected to park"); return }
        #expect(watch.waiterCount == 1)
        watch.advance(to: 4)  // the same hash: parked again, nothing delivered
        #expect(watch.waiterCount == 1)
        source.value = "b"
        watch.advance(to: 5)
        watch.shutdown()  // a second ending must not deliver twice
        sink.finish()
        var received: [String] = []
        for await answer in answers { received.append(answer) }
        #expect(received == ["b"])
    }

    @Test func aParkedQueryIsReadyAtOnceWhenNothingIsToWaitFor() {
        let watch = IndexWatch(index: 3)
        let start = BlockingQuery.start(watch: watch, condition: .hash("other"), wait: .seconds(60),
                                        evaluate: { Answer(resourceIndex: 3, contentHash: "a") },
                                        deliver: { _ in Issue.record("ready answers are returned, not delivered") })
        guard case .ready(let result) = start else { Issue.record("expected an answer"); return }
        #expect((try? result.get())?.contentHash == "a")
        #expect(watch.waiterCount == 0)
    }

    /// A query answered at once, or parked and then answered, keeps nothing alive: every request
    /// on the event-loop path used to leak its query and closures (about 500 bytes) through a cycle.
    @Test func answeredQueriesKeepNothingAlive() {
        final class Canary: Sendable {}
        let watch = IndexWatch(index: 3)
        weak var readyCanary: Canary?
        weak var parkedCanary: Canary?
        weak var parkedQuery: ParkedQuery?
        do {
            let canary = Canary()
            readyCanary = canary
            let start = BlockingQuery.start(watch: watch, condition: .none, wait: .seconds(60),
                                            evaluate: { _ = canary; return Answer(resourceIndex: 3, contentHash: "a") },
                                            deliver: { _ in _ = canary })
            guard case .ready = start else { Issue.record("expected an answer"); return }
        }
        do {
            let canary = Canary()
            parkedCanary = canary
            let start = BlockingQuery.start(watch: watch, condition: .index(3), wait: .seconds(60),
                                            evaluate: { _ = canary; return Answer(resourceIndex: watch.index, contentHash: "a") },
                                            deliver: { _ in _ = canary })
            guard case .parked(let query) = start else { Issue.record("expected to park"); return }
            parkedQuery = query
            watch.advance(to: 4)
        }
        #expect(readyCanary == nil, "a query answered at once is still alive")
        #expect(parkedCanary == nil && parkedQuery == nil, "an answered parked query is still alive")
    }

    @Test func finishAnswersNowAndAbandonFreesTheWaiterSilently() async throws {
        let watch = IndexWatch(index: 3)
        let delivered = HashSource("")
        func park(_ tag: String) -> ParkedQuery? {
            let start = BlockingQuery.start(watch: watch, condition: .index(3), wait: .seconds(60),
                                            evaluate: { Answer(resourceIndex: 3, contentHash: tag) },
                                            deliver: { delivered.value += (try? $0.get())?.contentHash ?? "?" })
            if case .parked(let query) = start { return query }
            return nil
        }
        let finished = try #require(park("f"))
        let abandoned = try #require(park("x"))
        #expect(watch.waiterCount == 2)
        finished.finish()
        abandoned.abandon()
        #expect(watch.waiterCount == 0)
        finished.finish()
        watch.advance(to: 9)
        #expect(delivered.value == "f")
    }

    @Test func parkedCallbacksTimeOutAndCanBeTakenBack() async throws {
        let watch = IndexWatch(index: 1)
        let (outcomes, sink) = AsyncStream.makeStream(of: WatchOutcome.self)
        let kept = watch.park(after: 1, timeout: .milliseconds(30)) { sink.yield($0) }
        let taken = watch.park(after: 1, timeout: .milliseconds(30)) { _ in Issue.record("taken back") }
        #expect(watch.unpark(try taken.get()))
        #expect(!watch.unpark(try taken.get()))
        _ = try kept.get()
        var iterator = outcomes.makeAsyncIterator()
        #expect(await iterator.next() == .timedOut)
        if case .failure(let immediate) = watch.park(after: 0, timeout: .seconds(1), { _ in }) {
            #expect(immediate.outcome == .changed(1))
        } else {
            Issue.record("an index already past needs no parking")
        }
    }

    @Test func waitIsClampedAndJittered() {
        #expect(BlockingQuery.effectiveWait(requested: nil, jitter: 0) == .seconds(300))
        #expect(BlockingQuery.effectiveWait(requested: .seconds(3600), jitter: 0) == .seconds(600))
        #expect(BlockingQuery.effectiveWait(requested: .seconds(16), jitter: 0.5) == .milliseconds(16_500))
    }
}

final class HashSource: @unchecked Sendable {
    private let lock = NSLockish()
    private var stored: String
    init(_ value: String) { stored = value }
    var value: String {
        get { lock.with { stored } }
        set { lock.with { stored = newValue } }
    }
}

import Synchronization

final class NSLockish: Sendable {
    private let mutex = Mutex(())
    func with<T>(_ body: () -> T) -> T { mutex.withLock { _ in body() } }
}
