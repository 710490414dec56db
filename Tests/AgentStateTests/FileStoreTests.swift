import AgentState
import ConnectdCore
import Foundation
import Testing

@Suite struct FileStoreTests {
    @Test func writesAtomicallyWithPrivateModes() throws {
        let dir = temporaryDirectory()
        let store = try FileStore(dataDir: dir)
        let revision = try store.commit([.put(key: "services/web/x", value: .object([("a", .int(1))]))])
        #expect(revision == 1)
        let file = dir + "/state/services/web%2Fx.json"
        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let dirAttributes = try FileManager.default.attributesOfItem(atPath: dir + "/state/services")
        #expect((dirAttributes[.posixPermissions] as? Int) == 0o700)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir + "/state/services").filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty)
    }

    @Test func reopenReadsBackEntriesAndRevision() throws {
        let dir = temporaryDirectory()
        let store = try FileStore(dataDir: dir)
        try store.commit([.put(key: "proxies/a", value: .string("one"))])
        try store.commit([.put(key: "proxies/b", value: .string("two"))])
        try store.commit([.delete(key: "proxies/b")])
        let reopened = try FileStore(dataDir: dir)
        #expect(reopened.revision == 3)
        #expect(try reopened.list(prefix: "proxies/") == [StoredEntry(key: "proxies/a", value: .string("one"), modRevision: 1)])
    }

    @Test func compareFailureAppliesNothing() throws {
        let store = try FileStore(dataDir: temporaryDirectory())
        try store.commit([.put(key: "k/a", value: .int(1))])
        #expect(throws: StoreError.self) {
            try store.commit([.put(key: "k/a", value: .int(2))], expect: ["k/a": 99])
        }
        #expect(try store.list(prefix: "k/").first?.value == .int(1))
        try store.commit([.put(key: "k/a", value: .int(3))], expect: ["k/a": 1])
        #expect(try store.list(prefix: "k/").first?.value == .int(3))
    }

    @Test func corruptFilesAreQuarantinedNotFatal() throws {
        let dir = temporaryDirectory()
        let store = try FileStore(dataDir: dir)
        try store.commit([.put(key: "services/good", value: .string("ok"))])
        try "{ not json".write(toFile: dir + "/state/services/bad.json", atomically: false, encoding: .utf8)
        try #"{"Value": 1}"#.write(toFile: dir + "/state/services/norev.json", atomically: false, encoding: .utf8)
        try "partial".write(toFile: dir + "/state/services/good.json.tmp-123", atomically: false, encoding: .utf8)

        let reopened = try FileStore(dataDir: dir)
        #expect(try reopened.list(prefix: "services/").map(\.key) == ["services/good"])
        #expect(reopened.quarantined.map(\.key).sorted() == ["services/bad.json", "services/norev.json"])
        let moved = try FileManager.default.contentsOfDirectory(atPath: dir + "/quarantine")
        #expect(moved.count == 2)
        #expect(!FileManager.default.fileExists(atPath: dir + "/state/services/good.json.tmp-123"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/state/services/bad.json"))
    }

    /// Well-formed JSON of the wrong shape is moved aside like an unreadable file (it used to stay
    /// in place, logged with `problems=[]`, and be skipped again on every start).
    @Test func wrongShapeRecordsAreQuarantined() async throws {
        let dir = temporaryDirectory()
        let store = try FileStore(dataDir: dir)
        try store.commit([
            .put(key: "services/odd", value: .object([("Definition", .object([("Port", .string("x"))]))])),
            .put(key: "services/shapeless", value: .array([.int(1)])),
            .put(key: "services/good", value: .object([("Definition", .object([("Name", .string("good"))]))])),
            .put(key: "proxies/odd-proxy", value: .object([("ProxyToken", .int(1))])),
        ])
        let state = try makeState(dataDir: dir)
        #expect(Array(state.snapshot.services.keys) == ["good"])
        for file in ["services/odd.json", "services/shapeless.json", "proxies/odd-proxy.json"] {
            #expect(!FileManager.default.fileExists(atPath: dir + "/state/" + file), "\(file) is still in place")
        }
        let moved = try FileManager.default.contentsOfDirectory(atPath: dir + "/quarantine").sorted()
        #expect(moved.count == 3)
        #expect(moved.allSatisfy { $0.hasPrefix("services_odd.json") || $0.hasPrefix("services_shapeless.json") || $0.hasPrefix("proxies_odd-proxy.json") })
        // The next start finds nothing to quarantine and keeps the good record.
        let reopened = try FileStore(dataDir: dir)
        #expect(reopened.quarantined.isEmpty)
        #expect(try reopened.list(prefix: "").map(\.key) == ["services/good"])
    }
}
