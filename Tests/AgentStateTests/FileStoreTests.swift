import AgentState
@testable import AgentStore
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

        // Writes of one commit: the journal, four records, the revision file.
        for n in 1...7 {
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
            #expect(reopened.quarantined.isEmpty && reopened.damaged.isEmpty)
            // Finished at open: the record files alone (journal gone) hold the same.
            try FileManager.default.removeItem(atPath: dir + "/state/journal.json")
            #expect(try Self.contents(FileStore(dataDir: dir)) == expected, "write \(n): journal finished at open")
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
        try store.commit([.put(key: "services/d", value: .int(4))])
        // The second commit's journal replaced the first's: the record files must hold the first.
        #expect(try FileStore.Journal.read(dir + "/state/journal.json")?.revision == 3)
        var expected = try Self.contents(store)
        #expect(expected["services/b"] == .int(20) && expected["services/d"] == .int(4) && expected["services/c"] == nil)
        expected = try Self.contents(FileStore(dataDir: dir))
        #expect(expected == (try Self.contents(store)))
        #expect(try FileStore(dataDir: dir).revision == 3)
    }
}

/// The revision never goes backwards, and records that must not be lost are never moved aside.
@Suite struct FileStoreDamageTests {
    static func populated() throws -> String {
        let dir = temporaryDirectory()
        let store = try FileStore(dataDir: dir)
        try store.commit([.put(key: "services/a", value: .int(1)), .put(key: "services/b", value: .int(2))])
        try store.commit([.put(key: "ca/roots", value: .string("roots")), .put(key: "agent/node-id", value: .string("n"))])
        try store.commit([.delete(key: "services/b")])
        return dir
    }

    @Test func aDamagedRevisionFileIsCoveredByTheJournal() throws {
        let dir = try Self.populated()
        try "{\"Revi".write(toFile: dir + "/state/revision.json", atomically: false, encoding: .utf8)
        let reopened = try FileStore(dataDir: dir)
        #expect(reopened.revision == 3, "the last commit was a delete: no record holds revision 3, the journal does")
        #expect(reopened.damaged.isEmpty)
        #expect(reopened.quarantined.map(\.key) == ["revision.json"])
        #expect(try FileStore(dataDir: dir).revision == 3, "rewritten at open")
    }

    @Test func aDamagedJournalIsCoveredByTheRevisionFile() throws {
        let dir = try Self.populated()
        try "garbage".write(toFile: dir + "/state/journal.json", atomically: false, encoding: .utf8)
        let reopened = try FileStore(dataDir: dir)
        #expect(reopened.revision == 3)
        #expect(reopened.damaged.isEmpty)
        #expect(reopened.quarantined.map(\.key) == ["journal.json"])
    }

    @Test func bothDamagedIsReportedNotGuessed() throws {
        let dir = try Self.populated()
        try "garbage".write(toFile: dir + "/state/journal.json", atomically: false, encoding: .utf8)
        try "".write(toFile: dir + "/state/revision.json", atomically: false, encoding: .utf8)
        let reopened = try FileStore(dataDir: dir)
        #expect(reopened.damaged.map(\.relativePath) == ["revision.json"])
        #expect(FileManager.default.fileExists(atPath: dir + "/state/revision.json"), "left in place for the operator")
        // Moving it aside is the operator's explicit choice: the records' highest revision then.
        try FileManager.default.removeItem(atPath: dir + "/state/revision.json")
        let chosen = try FileStore(dataDir: dir)
        #expect(chosen.damaged.isEmpty)
        #expect(chosen.revision == 2)
    }

    @Test func protectedRecordsStayInPlaceAndAreReported() throws {
        let dir = try Self.populated()
        try "{ not json".write(toFile: dir + "/state/ca/roots.json", atomically: false, encoding: .utf8)
        try #"{"Value": 1}"#.write(toFile: dir + "/state/agent/node-id.json", atomically: false, encoding: .utf8)
        try "{ not json".write(toFile: dir + "/state/services/a.json", atomically: false, encoding: .utf8)
        let reopened = try FileStore(dataDir: dir)
        #expect(reopened.damaged.map(\.relativePath) == ["agent/node-id.json", "ca/roots.json"])
        #expect(reopened.quarantined.map(\.key) == ["services/a.json"], "an ordinary record is moved aside as before")
        #expect(try reopened.list(prefix: "ca/").isEmpty)
        #expect(FileManager.default.fileExists(atPath: dir + "/state/ca/roots.json"))
        #expect(FileManager.default.fileExists(atPath: dir + "/state/agent/node-id.json"))
        let moved = reopened.setAside(reopened.damaged[1])
        #expect(moved.movedTo.hasPrefix(dir + "/quarantine/ca_roots.json."))
        #expect(try FileStore(dataDir: dir).damaged.map(\.relativePath) == ["agent/node-id.json"])
    }

    @Test func oneProcessPerDataDir() throws {
        let dir = temporaryDirectory()
        let lock = try DataDirLock(dataDir: dir)
        #expect(throws: StoreError.self) { try DataDirLock(dataDir: dir) }
        do {
            _ = try DataDirLock(dataDir: dir)
        } catch {
            #expect(error.message.contains("pid \(getpid())"), "\(error)")
        }
        lock.release()
        _ = try DataDirLock(dataDir: dir)
    }
}
