import TestSupport
import ConnectdCore
import EtcdClient
import Foundation
import Testing

/// The client against a real 3-member etcd 3.4 cluster on loopback.
@Suite(.serialized) struct ClusterTests {
    func bytes(_ text: String) -> Data { Data(text.utf8) }

    @Test func putRangeDeleteAndRevisions() async throws {
        try await EtcdCluster.with { cluster in
            let client = EtcdClient(.init(endpoints: cluster.endpoints))
            let first = try await client.put(PutRequest(key: bytes("t/a"), value: bytes("1")))
            let second = try await client.put(PutRequest(key: bytes("t/b"), value: bytes("2"), prevKv: true))
            #expect(second.header!.currentRevision == first.header!.currentRevision + 1)
            let all = try await client.range(.prefix(bytes("t/")))
            #expect(all.values.map { String(decoding: $0.key, as: UTF8.self) } == ["t/a", "t/b"])
            #expect(all.values.map { String(decoding: $0.value ?? Data(), as: UTF8.self) } == ["1", "2"])
            // An MVCC read at the first revision sees only the first key.
            let old = try await client.range(.prefix(bytes("t/"), revision: first.header!.currentRevision))
            #expect(old.values.count == 1)
            let deleted = try await client.deleteRange(DeleteRangeRequest(key: bytes("t/a")))
            #expect(deleted.deleted == 1)
            #expect(try await client.range(RangeRequest(key: bytes("t/a"))).values.isEmpty)
            try await client.shutdown()
        }
    }

    /// Two writers racing to create one key with a create-only transaction: exactly one wins,
    /// and the loser reads the winner's value in the same transaction.
    @Test func createOnlyTransactionsHaveOneWinner() async throws {
        try await EtcdCluster.with { cluster in
            let client = EtcdClient(.init(endpoints: cluster.endpoints))
            let key = bytes("connectd/ca/roots")
            let outcomes = try await withThrowingTaskGroup(of: (String, TxnResponse).self) { group in
                for name in ["root-1", "root-2", "root-3", "root-4"] {
                    group.addTask {
                        (name, try await client.txn(TxnRequest(compare: [.absent(key)],
                                                               success: [.put(PutRequest(key: key, value: Data(name.utf8)))],
                                                               failure: [.range(RangeRequest(key: key))])))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let winners = outcomes.filter { $0.1.applied }
            #expect(winners.count == 1)
            let stored = try await client.range(RangeRequest(key: key)).values.first?.value
            #expect(stored == winners.first.map { Data($0.0.utf8) })
            for (_, loser) in outcomes where !loser.applied {
                #expect(loser.responses?.first?.responseRange?.values.first?.value == stored)
            }
            // A write guarded by a stale mod_revision is not applied.
            let current = try await client.range(RangeRequest(key: key)).values.first!.modRevision!.value
            let guarded = TxnRequest(compare: [.modified(key, at: current)], success: [.put(PutRequest(key: key, value: bytes("next")))])
            #expect(try await client.txn(guarded).applied)
            #expect(try await !client.txn(guarded).applied)
            try await client.shutdown()
        }
    }

    @Test func leasesKeepAndDropTheirKeys() async throws {
        try await EtcdCluster.with { cluster in
            let client = EtcdClient(.init(endpoints: cluster.endpoints))
            let lease = try await client.grantLease(LeaseGrantRequest(ttlSeconds: 5))
            let id = try #require(lease.id?.value)
            #expect(lease.ttl == 5)
            _ = try await client.put(PutRequest(key: bytes("catalog/web/host-a"), value: bytes("{}"), lease: id))
            let kept = try await client.keepAlive(LeaseKeepAliveRequest(id: id))
            #expect(kept.remainingTTL == 5)
            _ = try await client.revokeLease(LeaseRevokeRequest(id: id))
            #expect(try await client.range(RangeRequest(key: bytes("catalog/web/host-a"))).values.isEmpty)
            // The lease is gone: its keepalive answer has no TTL.
            #expect(try await client.keepAlive(LeaseKeepAliveRequest(id: id)).remainingTTL == nil)
            try await client.shutdown()
        }
    }

    /// A dead member, first in the list or killed after it answered, costs one attempt: the
    /// call is answered by another member.
    @Test func aDeadMemberIsSkipped() async throws {
        try await EtcdCluster.with { cluster in
            let dead = "http://127.0.0.1:\(SocketAddress.freeLoopbackPort()!)"
            let client = EtcdClient(.init(endpoints: [dead] + cluster.endpoints, attemptTimeout: .milliseconds(500)))
            _ = try await client.put(PutRequest(key: bytes("k"), value: bytes("1")))
            // The client now prefers cluster member 0; kill it and write again.
            cluster.kill(0)
            let again = try await client.put(PutRequest(key: bytes("k"), value: bytes("2")))
            #expect(again.header?.currentRevision ?? 0 > 0)
            #expect(try await client.range(RangeRequest(key: bytes("k"))).values.first?.value == bytes("2"))
            try await client.shutdown()
        }
    }

    /// Nothing listening: the error names every endpoint and what happened there.
    @Test func unreachableNamesEveryEndpoint() async throws {
        let endpoints = (0..<2).map { _ in "http://127.0.0.1:\(SocketAddress.freeLoopbackPort()!)" }
        let client = EtcdClient(.init(endpoints: endpoints, attemptTimeout: .milliseconds(300)))
        do {
            _ = try await client.range(RangeRequest(key: bytes("k")))
            Issue.record("a call without etcd succeeded")
        } catch {
            guard case .unavailable(let attempts) = error else { Issue.record("\(error)"); return }
            #expect(attempts.count == 2)
            for endpoint in endpoints { #expect(attempts.contains { $0.hasPrefix(endpoint) }, "\(attempts)") }
            #expect(error.description.hasPrefix("etcd is unreachable: "))
        }
        try await client.shutdown()
    }

    /// With auth on, a host user reads and writes under its prefix, is refused elsewhere with
    /// etcd's 403, and authenticates again when its token expires (here after 2 s).
    @Test func authenticatesAndRenewsItsToken() async throws {
        try await EtcdCluster.with(extraArguments: ["--auth-token", "simple", "--auth-token-ttl", "2"]) { cluster in
            for command in [["user", "add", "root:rootpw"], ["role", "add", "host"],
                            ["role", "grant-permission", "host", "--prefix=true", "readwrite", "connectd/"],
                            ["user", "add", "host-a:hostpw"], ["user", "grant-role", "host-a", "host"], ["auth", "enable"]] {
                let done = try cluster.etcdctl(command)
                #expect(done.status == 0, "etcdctl \(command): \(done.output)")
            }
            let client = EtcdClient(.init(endpoints: cluster.endpoints, username: "host-a", password: "hostpw"))
            _ = try await client.put(PutRequest(key: bytes("connectd/hosts/host-a"), value: bytes("1")))
            do {
                _ = try await client.put(PutRequest(key: bytes("elsewhere"), value: bytes("1")))
                Issue.record("a write outside the user's prefix succeeded")
            } catch {
                guard case .gateway(let status, let code, _)? = error as? EtcdError else { Issue.record("\(error)"); return }
                #expect(status == 403)
                #expect(code == EtcdError.Code.permissionDenied)
            }
            try await Task.sleep(for: .seconds(3))
            let read = try await client.range(RangeRequest(key: bytes("connectd/hosts/host-a")))
            #expect(read.values.first?.value == bytes("1"))
            let wrong = EtcdClient(.init(endpoints: cluster.endpoints, username: "host-a", password: "nope"))
            await #expect(throws: EtcdError.self) { _ = try await wrong.range(RangeRequest(key: bytes("connectd/x"))) }
            try await wrong.shutdown()
            try await client.shutdown()
        }
    }
}
