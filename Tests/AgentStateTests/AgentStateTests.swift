import AgentConfig
import AgentState
import AgentStore
import ConnectdCore
import Foundation
import Logging
import Testing

@Suite struct AgentStateTests {
    @Test func configServicesGetProxiesWithTokensAndPorts() async throws {
        let state = try makeState(dataDir: temporaryDirectory())
        try await state.applyConfigFileServices([service("web"), service("db"), service("plain", proxy: nil)])
        let snapshot = state.snapshot
        #expect(snapshot.services.count == 3)
        #expect(Set(snapshot.proxies.keys) == ["web-proxy", "db-proxy"])
        let web = try #require(snapshot.proxies["web-proxy"])
        #expect(web.proxyServiceName == "web-proxy")
        #expect(web.targetServiceID == "web")
        #expect(web.token.count == 36)
        #expect(web.token.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
        #expect(Set(snapshot.proxies.values.map(\.bindPort)) == [20000, 20001])
        #expect(snapshot.proxies["db-proxy"]?.token != web.token)
    }

    @Test func reloadKeepsTokensAndPortsAndDoesNotBumpTheIndexWhenNothingChanged() async throws {
        let state = try makeState(dataDir: temporaryDirectory())
        try await state.applyConfigFileServices([service("web"), service("db")])
        let before = state.snapshot
        try await state.applyConfigFileServices([service("db"), service("web")])
        #expect(state.snapshot == before)
        var changed = service("web")
        changed.port = 9090
        try await state.applyConfigFileServices([changed, service("db")])
        let after = state.snapshot
        #expect(after.index > before.index)
        #expect(after.proxies["web-proxy"]?.token == before.proxies["web-proxy"]?.token)
        #expect(after.proxies["web-proxy"]?.bindPort == before.proxies["web-proxy"]?.bindPort)
    }

    @Test func restartKeepsTokensPortsAndAPIServices() async throws {
        let dir = temporaryDirectory()
        let first = try makeState(dataDir: dir)
        try await first.applyConfigFileServices([service("web")])
        try await first.register(service("api", port: 9000))
        let before = first.snapshot

        let second = try makeState(dataDir: dir)
        #expect(second.snapshot.services["api"]?.source == .api)
        #expect(second.snapshot.index >= before.index)
        try await second.applyConfigFileServices([service("web")])
        let after = second.snapshot
        #expect(after.services.keys.sorted() == ["api", "web"])
        for id in ["web-proxy", "api-proxy"] {
            #expect(after.proxies[id]?.token == before.proxies[id]?.token, "\(id)")
            #expect(after.proxies[id]?.bindPort == before.proxies[id]?.bindPort, "\(id)")
        }
        #expect(after.index >= before.index)
    }

    @Test func removedConfigProxiesLoseTheirRecords() async throws {
        let dir = temporaryDirectory()
        let state = try makeState(dataDir: dir)
        try await state.applyConfigFileServices([service("web")])
        let token = try #require(state.snapshot.proxies["web-proxy"]?.token)
        try await state.applyConfigFileServices([])
        #expect(state.snapshot.proxies.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir + "/state/proxies/web-proxy.json"))
        try await state.applyConfigFileServices([service("web")])
        #expect(state.snapshot.proxies["web-proxy"]?.token != token)
    }

    @Test func deregisterRemovesServiceProxyAndRecords() async throws {
        let dir = temporaryDirectory()
        let state = try makeState(dataDir: dir)
        try await state.register(service("api"))
        #expect(FileManager.default.fileExists(atPath: dir + "/state/services/api.json"))
        #expect(try await state.deregister(serviceID: "api"))
        #expect(state.snapshot.services.isEmpty && state.snapshot.proxies.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir + "/state/services/api.json"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/state/proxies/api-proxy.json"))
        #expect(try await state.deregister(serviceID: "api") == false)
    }

    @Test func configFileWinsOverAnAPIServiceWithTheSameID() async throws {
        let dir = temporaryDirectory()
        let state = try makeState(dataDir: dir)
        try await state.register(service("web", port: 1))
        try await state.applyConfigFileServices([service("web", port: 2)])
        #expect(state.snapshot.services["web"]?.source == .configFile)
        #expect(state.snapshot.services["web"]?.definition.port == 2)
        #expect(!FileManager.default.fileExists(atPath: dir + "/state/services/web.json"))
    }

    @Test func allocationSkipsBusyHostPortsAndExplicitPorts() async throws {
        let state = try makeState(dataDir: temporaryDirectory(), probe: FakeProbe(busy: [20000, 20002]))
        try await state.applyConfigFileServices([service("a", proxy: proxyRequest(bindPort: 20001)), service("b"), service("c")])
        let ports = state.snapshot.proxies.mapValues(\.bindPort)
        #expect(ports["a-proxy"] == 20001)
        #expect(Set([ports["b-proxy"], ports["c-proxy"]]) == [20003, 20004])
    }

    @Test func realHostProbeSeesABoundPort() throws {
        let listener = try TCPListener()
        #expect(!BindPortProbe(address: "127.0.0.1").isFree(port: listener.port))
        let port = listener.port
        listener.close()
        #expect(BindPortProbe(address: "127.0.0.1").isFree(port: port))
    }

    @Test func exhaustedRangeIsAClearError() async throws {
        let state = try makeState(dataDir: temporaryDirectory(), range: 20000...20001)
        do {
            try await state.applyConfigFileServices([service("a"), service("b"), service("c")])
            Issue.record("expected an allocation failure")
        } catch {
            #expect(error.description.contains("none left in the allocated range [20000, 20001]"))
        }
        #expect(state.snapshot.services.isEmpty)
    }

    @Test func explicitPortCollisionIsRefused() async throws {
        let state = try makeState(dataDir: temporaryDirectory())
        await #expect(throws: StateError.self) {
            try await state.applyConfigFileServices([service("a", proxy: proxyRequest(bindPort: 21000)),
                                                     service("b", proxy: proxyRequest(bindPort: 21000))])
        }
    }

    @Test func failedWriteChangesNothing() async throws {
        let state = try AgentState(store: try FailingStore(), allocator: PortAllocator(range: 20000...20010, probe: FakeProbe()),
                               logger: Logger(label: "test"))
        let before = state.snapshot
        do {
            try await state.register(service("api"))
            Issue.record("expected the write to fail")
        } catch {
            #expect(error.description == "cannot save state: state services/x: cannot write: No space left on device")
        }
        #expect(state.snapshot == before)
        #expect(state.watch.index == before.index)
    }

    @Test func changesWakeWatchers() async throws {
        let state = try makeState(dataDir: temporaryDirectory())
        let index = state.snapshot.index
        let waiter = Task { await state.watch.wait(after: index, timeout: .seconds(60)) }
        while state.watch.waiterCount == 0 { await Task.yield() }
        try await state.register(service("api"))
        #expect(await waiter.value == .changed(state.snapshot.index))
    }
}
