@testable import EtcdClient
import TestSupport
import Foundation
import Testing

/// The JSON the gateway gets, byte for byte: it ignores a misspelled field silently, so every
/// request shape is pinned here. Answers are decoded from what etcd 3.4.23 sent (strings for
/// 64-bit integers, zero values left out).
@Suite struct WireFormatTests {
    func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    let key = Data("/connectd/v1/intentions/web/db".utf8)

    @Test func requests() throws {
        #expect(try json(PutRequest(key: Data("foo".utf8), value: Data("bar".utf8), lease: 7529633909550557719, prevKv: true))
                == #"{"key":"Zm9v","lease":"7529633909550557719","prev_kv":true,"value":"YmFy"}"#)
        #expect(try json(RangeRequest.prefix(Data("a/".utf8), revision: 2))
                == #"{"key":"YS8=","range_end":"YTA=","revision":"2"}"#)
        #expect(try json(RangeRequest(key: Data("foo".utf8), countOnly: true)) == #"{"count_only":true,"key":"Zm9v"}"#)
        #expect(try json(DeleteRangeRequest(key: Data("foo".utf8))) == #"{"key":"Zm9v"}"#)
        let txn = TxnRequest(compare: [.absent(Data("k".utf8)), .modified(Data("m".utf8), at: 4)],
                             success: [.put(PutRequest(key: Data("k".utf8), value: Data("v".utf8)))],
                             failure: [.range(RangeRequest(key: Data("k".utf8)))])
        #expect(try json(txn) == #"{"compare":[{"create_revision":"0","key":"aw==","result":"EQUAL","target":"CREATE"},"#
                + #"{"key":"bQ==","mod_revision":"4","result":"EQUAL","target":"MOD"}],"failure":[{"request_range":{"key":"aw=="}}],"#
                + #""success":[{"request_put":{"key":"aw==","value":"dg=="}}]}"#)
        #expect(try json(LeaseGrantRequest(ttlSeconds: 10)) == #"{"TTL":"10"}"#)
        #expect(try json(LeaseKeepAliveRequest(id: 42)) == #"{"ID":"42"}"#)
        #expect(try json(AuthenticateRequest(name: "host-a", password: "pw")) == #"{"name":"host-a","password":"pw"}"#)
    }

    @Test func answers() throws {
        let range = try JSONDecoder().decode(RangeResponse.self, from: Data(#"""
        {"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"3","raft_term":"2"},
         "kvs":[{"key":"L2Nvbm5lY3RkL3YxL2ludGVudGlvbnMvd2ViL2Ri","create_revision":"2","mod_revision":"3","version":"2",
                 "value":"eyJhY3Rpb24iOiJkZW55In0="}],"count":"1"}
        """#.utf8))
        #expect(range.header?.currentRevision == 3)
        #expect(range.values.first?.key == key)
        #expect(range.values.first.map { String(decoding: $0.value ?? Data(), as: UTF8.self) } == #"{"action":"deny"}"#)
        #expect(range.values.first?.modRevision == 3)
        // A missing key: no kvs, no count.
        #expect(try JSONDecoder().decode(RangeResponse.self, from: Data(#"{"header":{"revision":"3"}}"#.utf8)).values.isEmpty)
        // A failed txn has no "succeeded".
        let failed = try JSONDecoder().decode(TxnResponse.self, from: Data(#"""
        {"header":{"revision":"4"},"responses":[{"response_range":{"header":{"revision":"4"},"kvs":[{"key":"aw==","value":"dg=="}],"count":"1"}}]}
        """#.utf8))
        #expect(!failed.applied)
        #expect(failed.responses?.first?.responseRange?.values.first?.value == Data("v".utf8))
        let grant = try JSONDecoder().decode(LeaseGrantResponse.self, from: Data(#"{"header":{},"ID":"7529633909550557719","TTL":"5"}"#.utf8))
        #expect(grant.id == 7529633909550557719)
        #expect(grant.ttl == 5)
        // Unsigned IDs above Int64.max survive as their bit pattern.
        #expect(try JSONDecoder().decode(WireInt.self, from: Data(#""17402656687004652000""#.utf8)).value
                == Int64(bitPattern: 17402656687004652000))
        // After expiry the keepalive answer has no TTL.
        #expect(try JSONDecoder().decode(LeaseKeepAliveResponse.self, from: Data(#"{"result":{"header":{},"ID":"7"}}"#.utf8)).remainingTTL == nil)
        #expect(try JSONDecoder().decode(LeaseKeepAliveResponse.self, from: Data(#"{"result":{"ID":"7","TTL":"5"}}"#.utf8)).remainingTTL == 5)
        // Recorded from etcd 3.4.23: the status header is snake_case, the rest camelCase.
        let status = try JSONDecoder().decode(StatusResponse.self, from: Data(#"""
        {"header":{"cluster_id":"15875391935852295136","member_id":"7383792418829112008","revision":"1","raft_term":"2"},
         "version":"3.4.23","dbSize":"24576","leader":"7383792418829112008","raftIndex":"4","raftTerm":"2","raftAppliedIndex":"4","dbSizeInUse":"16384"}
        """#.utf8))
        #expect(status.isLeader && status.hasLeader && status.version == "3.4.23" && status.header?.revision == 1 && status.raftIndex == 4)
        let lost = try JSONDecoder().decode(StatusResponse.self, from: Data(#"""
        {"header":{"member_id":"7"},"version":"3.4.23","errors":["etcdserver: no leader"]}
        """#.utf8))
        #expect(!lost.hasLeader && lost.errors == ["etcdserver: no leader"])
        #expect(String(decoding: try JSONEncoder().encode(StatusRequest()), as: UTF8.self) == "{}")
    }

    @Test func prefixEnds() {
        #expect(KeyRange.end(ofPrefix: Data("a/".utf8)) == Data("a0".utf8))
        #expect(KeyRange.end(ofPrefix: Data([0x61, 0xff])) == Data([0x62]))
        #expect(KeyRange.end(ofPrefix: Data([0xff, 0xff])) == Data([0]))
    }
}
