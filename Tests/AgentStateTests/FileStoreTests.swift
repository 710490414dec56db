import AgentState
import AgentStore
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
        #expect(try reopened.list(prefix: "services/").map(\.key) == ["services/good"])
        #expect(try reopened.list(prefix: "proxies/").isEmpty)
    }
}

/// A commit is one transaction: whichever file write fails, memory and disk hold either all of
/// it or none of it, and a refused commit (it throws) holds none of it, after a restart too.
@Suite struct FileStoreTransactionTests {
    static let before: [StoreOperation] = [.put(key: "services/a", value: .int(1)), .put(key: "services/c", value: .int(3))]
    static let change: [StoreOperation] = [
        .put(key: "services/a", value: .int(10)), .put(key: "services/b", value: .int(20)), .delete(key: "services/c"),
        .put(key: "proxies/a-proxy", value: .string("token")),
    ]

    static func contents(_ store: FileStore) throws -> [String: JSONValue] {
        Dictionary(uniqueKeysWithValues: try store.list(prefix: "").map { ($0.key, $0.value) })
    }

    @Test func everyFailedWriteLeavesAllOrNothing() throws {
        let reference = try FileStore(dataDir: temporaryDirectory())
        try reference.commit(Self.before)
        let old = try Self.contents(reference)
        try reference.commit(Self.change)
        let new = try Self.contents(reference)

        // Writes of one commit: the journal, four records, the revision file, the journal's removal.
        for n in 1...8 {
            let dir = temporaryDirectory()
            let faults = StoreFaults()
            let store = try FileStore(dataDir: dir, faults: faults)
            try store.commit(Self.before)
            faults.failWrite(n)
            let refused: Bool
            do {
                try store.commit(Self.change)
                refused = false
            } catch {
                refused = true
            }
            #expect(refused == (n == 1), "write \(n): only a journal that could not be written refuses the commit")
            let expected = refused ? old : new
            #expect(try Self.contents(store) == expected, "write \(n): memory")
            #expect(store.revision == (refused ? 1 : 2), "write \(n)")
            let reopened = try FileStore(dataDir: dir)
            #expect(try Self.contents(reopened) == expected, "write \(n): disk after a restart")
            #expect(reopened.revision == store.revision, "write \(n): revision after a restart")
            #expect(reopened.quarantined.isEmpty)
            #expect(!FileManager.default.fileExists(atPath: dir + "/state/journal.json"), "write \(n): journal finished at open")
        }
    }

    /// A journal left by an interrupted apply is finished by the next commit in the same process.
    @Test func theNextCommitFinishesAnUnappliedJournal() throws {
        let dir = temporaryDirectory()
        let faults = StoreFaults()
        let store = try FileStore(dataDir: dir, faults: faults)
        try store.commit(Self.before)
        faults.failWrite(3)
        try store.commit(Self.change)
        #expect(FileManager.default.fileExists(atPath: dir + "/state/journal.json"))
        try store.commit([.put(key: "services/d", value: .int(4))])
        #expect(!FileManager.default.fileExists(atPath: dir + "/state/journal.json"))
        var expected = try Self.contents(store)
        #expect(expected["services/b"] == .int(20) && expected["services/d"] == .int(4) && expected["services/c"] == nil)
        expected = try Self.contents(FileStore(dataDir: dir))
        #expect(expected == (try Self.contents(store)))
        #expect(try FileStore(dataDir: dir).revision == 3)
    }
}
