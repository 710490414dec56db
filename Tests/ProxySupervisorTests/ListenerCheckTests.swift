import Testing
@testable import ProxySupervisor

/// The "Connect Proxy Listening" check dials where the proxy listens: its own bind_address, else
/// the agent's bind_addr (a proxy binds there by default), loopback for a wildcard.
struct ListenerCheckTests {
    @Test func theCheckDialsWhereTheProxyListens() {
        #expect(ListenerCheckService.checkAddress(registered: "", agentBindAddress: "10.0.0.5") == "10.0.0.5")
        #expect(ListenerCheckService.checkAddress(registered: "", agentBindAddress: "0.0.0.0") == "127.0.0.1")
        #expect(ListenerCheckService.checkAddress(registered: "192.168.1.2", agentBindAddress: "10.0.0.5") == "192.168.1.2")
        #expect(ListenerCheckService.checkAddress(registered: "0.0.0.0", agentBindAddress: "10.0.0.5") == "127.0.0.1")
        #expect(ListenerCheckService.checkAddress(registered: "", agentBindAddress: "::") == "127.0.0.1")
    }
}
