import AgentConfig
import ProxySupervisor
import Testing

@Suite struct RestartPolicyTests {
    let settings = ResolvedSupervision()

    @Test func firstFailuresRestartAtOnceThenBackOffToTheCap() {
        var tracker = RestartTracker()
        var delays: [Duration] = []
        for _ in 0..<10 {
            guard case .restart(let delay) = tracker.decide(after: .exited(1), uptime: .milliseconds(10), settings: settings, jitter: 0.5) else {
                Issue.record("expected a restart")
                return
            }
            delays.append(delay)
        }
        #expect(delays == [.zero, .zero, .zero, .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(32), .seconds(60), .seconds(60)])
    }

    @Test func jitterStaysWithinTenPercentAndUnderTheCap() {
        for jitter in [0.0, 0.999] {
            var tracker = RestartTracker()
            var last: Duration = .zero
            for _ in 0..<12 {
                if case .restart(let delay) = tracker.decide(after: .signaled(9), uptime: .zero, settings: settings, jitter: jitter) { last = delay }
            }
            #expect(last <= .seconds(60))
            #expect(last >= .seconds(54))
        }
    }

    @Test func healthyUptimeResetsTheCount() {
        var tracker = RestartTracker()
        for _ in 0..<5 { _ = tracker.decide(after: .exited(1), uptime: .seconds(1), settings: settings, jitter: 0.5) }
        #expect(tracker.consecutiveFailures == 5)
        #expect(tracker.decide(after: .exited(1), uptime: .seconds(12), settings: settings, jitter: 0.5) == .restart(after: .zero))
        #expect(tracker.consecutiveFailures == 1)
    }

    @Test func permanentExitCodesGiveUp() {
        var tracker = RestartTracker()
        guard case .giveUp(let reason) = tracker.decide(after: .exited(78), uptime: .zero, settings: settings) else {
            Issue.record("expected give-up")
            return
        }
        #expect(reason.contains("78"))
        #expect(tracker.decide(after: .exited(0), uptime: .zero, settings: settings, jitter: 0.5) == .restart(after: .zero))
    }
}
