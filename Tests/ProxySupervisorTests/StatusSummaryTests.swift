import AgentState
import Foundation
import ProxySupervisor
import Testing

@Suite struct StatusSummaryTests {
    @Test func summarizesStatesBackoffAndRestarts() {
        let now = Date(timeIntervalSince1970: 1000)
        var web = ProxyStatus(proxyID: "web-proxy", targetServiceID: "web", state: .backingOff(until: now.addingTimeInterval(3.2)))
        web.restartCount = 4
        web.lastExit = .exited(1)
        web.lastExitAt = now
        let db = ProxyStatus(proxyID: "db-proxy", targetServiceID: "db", state: .running(pid: 7, since: now, adopted: false))
        #expect(StatusSummary.line([web, db], now: now)
                == "2 proxies: 1 running, 1 backing-off (web-proxy exit code 1, retry in 4s); 4 restarts, last web-proxy exit code 1")
        #expect(StatusSummary.line([], now: now) == "no managed proxies")
        #expect(StatusSummary.line([db], now: now) == "1 proxy: 1 running")
    }
}
