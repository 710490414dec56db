import TestSupport
import ConnectdCore
import NIOCore
@testable import EtcdClient
import Foundation
import Testing

/// Watches against a real cluster (progress notifications every second), and the line decoding
/// on its own: fragments, the error envelope, cancellation after compaction.
@Suite(.serialized) struct WatchTests {
    func bytes(_ text: String) -> Data { Data(text.utf8) }

    /// Collects updates until `enough` says so or `seconds` pass; returns them and how the stream ended.
    func collect(_ stream: AsyncThrowingStream<WatchUpdate, any Error>, seconds: Double,
                 until enough: @escaping @Sendable ([WatchUpdate]) -> Bool) async -> ([WatchUpdate], (any Error)?) {
        await withTaskGroup(of: ([WatchUpdate], (any Error)?)?.self) { group in
            group.addTask {
                var seen: [WatchUpdate] = []
                do {
                    for try await update in stream {
                        seen.append(update)
                        if enough(seen) { return (seen, nil) }
                    }
                    return (seen, nil)
                } catch {
                    return (seen, error)
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(seconds))
                return nil
            }
            let first = await group.next()!
            group.cancelAll()
            return first ?? ([], WatchEnd.interrupted("the test's wait ran out"))
        }
    }

    @Test func eventsInOrderThenProgress() async throws {
        try await EtcdCluster.with { cluster in
            let client = EtcdClient(.init(endpoints: cluster.endpoints))
            let start = try await client.put(PutRequest(key: bytes("w/a"), value: bytes("1"))).header!.currentRevision
            _ = try await client.put(PutRequest(key: bytes("w/b"), value: bytes("2")))
            _ = try await client.deleteRange(DeleteRangeRequest(key: bytes("w/a")))
            _ = try await client.put(PutRequest(key: bytes("other"), value: bytes("x")))
            let (updates, end) = await collect(client.watch(prefix: bytes("w/"), from: start), seconds: 10) { seen in
                seen.contains { if case .progress = $0 { true } else { false } }
            }
            #expect(end == nil, "\(String(describing: end))")
            guard case .created? = updates.first else { Issue.record("\(updates)"); return }
            let events: [WatchEvent] = updates.flatMap { update -> [WatchEvent] in
                if case .events(let events, _) = update { return events }
                return []
            }
            #expect(events.map(\.kind) == [.put, .put, .delete])
            #expect(events.map { String(decoding: $0.kv?.key ?? Data(), as: UTF8.self) } == ["w/a", "w/b", "w/a"])
            #expect(events.last?.prevKv?.value == bytes("1"))
            // A progress notification came while nothing under w/ changed.
            #expect(updates.contains { if case .progress(let revision) = $0 { revision > start } else { false } })
            try await client.shutdown()
        }
    }

    @Test func aCompactedStartEndsTheWatch() async throws {
        try await EtcdCluster.with { cluster in
            let client = EtcdClient(.init(endpoints: cluster.endpoints))
            var last: Int64 = 0
            for value in 1...4 { last = try await client.put(PutRequest(key: bytes("c/k"), value: bytes("\(value)"))).header!.currentRevision }
            let compacted = try cluster.etcdctl(["compact", "\(last)"])
            #expect(compacted.status == 0, "\(compacted.output)")
            let (_, end) = await collect(client.watch(prefix: bytes("c/"), from: last - 2), seconds: 10) { _ in false }
            #expect(end as? WatchEnd == .compacted(revision: last), "\(String(describing: end))")
            try await client.shutdown()
        }
    }

    @Test func aKilledMemberEndsTheWatch() async throws {
        try await EtcdCluster.with { cluster in
            let client = EtcdClient(.init(endpoints: cluster.endpoints))
            let start = try await client.put(PutRequest(key: bytes("k/a"), value: bytes("1"))).header!.currentRevision
            let stream = client.watch(prefix: bytes("k/"), from: start, idleTimeout: .seconds(5))
            let watching = Task { await collect(stream, seconds: 15) { _ in false } }
            try await Task.sleep(for: .milliseconds(500))
            cluster.kill(0)  // the endpoint the client prefers
            let (updates, end) = await watching.value
            guard case .interrupted? = end as? WatchEnd else { Issue.record("\(String(describing: end))"); return }
            #expect(updates.first.map { if case .created = $0 { true } else { false } } == true)
            try await client.shutdown()
        }
    }

    @Test func linesJoinFragmentsAndReadErrors() throws {
        var pending: WatchResponse?
        let first = #"{"result":{"header":{"revision":"9"},"fragment":true,"events":[{"kv":{"key":"YQ==","mod_revision":"9"}}]}}"#
        let second = #"{"result":{"header":{"revision":"9"},"events":[{"type":"DELETE","kv":{"key":"Yg==","mod_revision":"9"}}]}}"#
        #expect(try EtcdClient.update(from: Data(first.utf8), joining: &pending) == nil)
        guard case .events(let events, let revision)? = try EtcdClient.update(from: Data(second.utf8), joining: &pending) else {
            Issue.record("no events"); return
        }
        #expect(events.map(\.kind) == [.put, .delete])
        #expect(revision == 9)
        let noLeader = #"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}"#
        #expect(throws: WatchEnd.interrupted("etcdserver: no leader")) { _ = try EtcdClient.update(from: Data(noLeader.utf8), joining: &pending) }
        var splitter = LineSplitter(maxLineBytes: 8)
        #expect(try splitter.append(ByteBuffer(string: "{\"a\"\n{\"b\"")) == [Data("{\"a\"".utf8)])
        #expect(throws: WatchEnd.self) { _ = try splitter.append(ByteBuffer(string: "123456789")) }
    }
}
