import TestSupport
import EtcdClient
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// The lease keeper against a real cluster: it keeps its lease past several TTLs, replaces a
/// lease that disappears (and re-writes what was tied to it), and revokes it on a graceful stop.
@Suite(.serialized) struct LeaseKeeperTests {
    actor Grants {
        var ids: [Int64] = []
        func add(_ id: Int64) { ids.append(id) }
    }

    func waitFor(_ seconds: Double, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    @Test func keepsReplacesAndRevokesItsLease() async throws {
        try await EtcdCluster.with { cluster in
            let client = EtcdClient(.init(endpoints: cluster.endpoints))
            let key = Data("connectd/hosts/host-a".utf8)
            let grants = Grants()
            let keeper = LeaseKeeper(client: client, ttlSeconds: 2, logger: Logger(label: "test")) { id in
                _ = try? await client.put(PutRequest(key: key, value: Data("up".utf8), lease: id))
                await grants.add(id)
            }
            let group = ServiceGroup(configuration: .init(services: [.init(service: keeper)], logger: Logger(label: "test")))
            let running = Task { try await group.run() }
            let present = { try await !client.range(RangeRequest(key: key)).values.isEmpty }
            #expect(await waitFor(5) { await grants.ids.count == 1 })
            // Two and a half TTLs later the key is still there: keepalives arrive.
            try await Task.sleep(for: .seconds(5))
            #expect(try await present())
            #expect(await grants.ids.count == 1)
            // The lease disappears (as after an outage longer than its TTL): a new one, key back.
            let first = await grants.ids[0]
            _ = try await client.revokeLease(LeaseRevokeRequest(id: first))
            #expect(try await waitFor(5) { await grants.ids.count == 2 })
            #expect(try await waitFor(2) { try await present() })
            #expect(await grants.ids[1] != first)
            // A graceful stop revokes the lease: the key is gone at once.
            await group.triggerGracefulShutdown()
            try await running.value
            #expect(try await !present())
            #expect(await keeper.state == .stopped)
            try await client.shutdown()
        }
    }
}
