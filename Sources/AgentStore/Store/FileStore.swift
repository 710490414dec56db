// DurableStore on plain JSON files under `<data_dir>/state`, one file per key.

import ConnectdCore
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Each key `a/b` is the file `<root>/a/b.json` holding `{"ModRevision": N, "Value": ...}`;
/// `<root>/revision.json` holds the store revision. At open, half-written temp files are
/// removed and unreadable files are moved to `<data_dir>/quarantine/` (see ``quarantined``):
/// bad files never stop the agent.
///
/// A commit is one transaction: its operations are first written, as one atomic file, to
/// `<root>/journal.json` (the commit point), then applied to the record files, then the journal
/// is removed. A commit whose journal could not be written changed nothing, on disk or in memory,
/// and throws; once the journal is down the commit holds, and a crash or a failed write while
/// applying it is finished from the journal (at the next commit, or at the next open).
public final class FileStore: DurableStore {
    public let root: String
    public let quarantineDirectory: String
    private let state: Mutex<State>

    private struct State {
        var revision: UInt64
        var entries: [String: StoredEntry]
        /// A committed journal not yet fully applied to the record files.
        var unapplied: Journal?
    }

    /// One committed transaction as the journal file holds it.
    struct Journal {
        var revision: UInt64
        var operations: [StoreOperation]

        var json: JSONValue {
            .object([
                ("Revision", .int(Int64(revision))),
                ("Operations", .array(operations.map { operation in
                    switch operation {
                    case .put(let key, let value): .object([("Put", .string(key)), ("Value", value)])
                    case .delete(let key): .object([("Delete", .string(key))])
                    }
                })),
            ])
        }

        init(revision: UInt64, operations: [StoreOperation]) {
            self.revision = revision
            self.operations = operations
        }

        init?(json: JSONValue) {
            guard case .int(let revision)? = json["Revision"], revision > 0, case .array(let items)? = json["Operations"] else { return nil }
            var operations: [StoreOperation] = []
            for item in items {
                if let key = item["Put"]?.stringValue, let value = item["Value"] {
                    operations.append(.put(key: key, value: value))
                } else if let key = item["Delete"]?.stringValue {
                    operations.append(.delete(key: key))
                } else {
                    return nil
                }
            }
            self.init(revision: UInt64(revision), operations: operations)
        }
    }

    private let faults: StoreFaults?
    private var journalPath: String { root + "/journal.json" }

    /// Problems found at open: files moved aside, with why.
    public let quarantined: [QuarantinedEntry]

    /// Opens (creating when missing) the store under `dataDir`, finishing a committed journal
    /// that a crash left unapplied.
    ///
    /// - Parameter faults: for tests: fails a chosen file write, as a full disk would.
    public init(dataDir: String, faults: StoreFaults? = nil) throws(StoreError) {
        root = dataDir + "/state"
        quarantineDirectory = dataDir + "/quarantine"
        self.faults = faults
        try AtomicFile.makeDirectory(root)
        var entries: [String: StoredEntry] = [:]
        var moved: [QuarantinedEntry] = []
        var revision: UInt64 = 0
        let enumerator = FileManager.default.enumerator(atPath: root)
        var relativePaths: [String] = []
        while let next = enumerator?.nextObject() as? String { relativePaths.append(next) }
        for relative in relativePaths.sorted() {
            let path = root + "/" + relative
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            if relative.contains(".tmp-") {
                try? AtomicFile.remove(path)
                continue
            }
            if relative == "journal.json" { continue }
            if relative == "revision.json" {
                if let value = try? JSONParser.parse(AtomicFile.read(path)), case .int(let stored)? = value["Revision"], stored >= 0 {
                    revision = max(revision, UInt64(stored))
                } else {
                    moved.append(Self.quarantine(path, relative: relative, into: quarantineDirectory, reason: "unreadable revision file"))
                }
                continue
            }
            guard relative.hasSuffix(".json") else { continue }
            let key = Self.key(fromRelativePath: String(relative.dropLast(5)))
            do {
                let document = try JSONParser.parse(AtomicFile.read(path))
                guard case .int(let modRevision)? = document["ModRevision"], modRevision >= 0, let value = document["Value"] else {
                    moved.append(Self.quarantine(path, relative: relative, into: quarantineDirectory, reason: "missing ModRevision or Value"))
                    continue
                }
                entries[key] = StoredEntry(key: key, value: value, modRevision: UInt64(modRevision))
                revision = max(revision, UInt64(modRevision))
            } catch {
                moved.append(Self.quarantine(path, relative: relative, into: quarantineDirectory, reason: "\(error)"))
            }
        }
        var loaded = State(revision: revision, entries: entries)
        let journalPath = root + "/journal.json"
        if access(journalPath, F_OK) == 0 {
            if let bytes = try? AtomicFile.read(journalPath), let document = try? JSONParser.parse(bytes),
               let journal = Journal(json: document) {
                Self.applyInMemory(journal, to: &loaded)
                loaded.unapplied = journal
            } else {
                // Written by rename, a journal is whole or absent; an unreadable one is damage.
                moved.append(Self.quarantine(journalPath, relative: "journal.json", into: quarantineDirectory, reason: "unreadable journal"))
            }
        }
        state = Mutex(loaded)
        quarantined = moved
        // Finish it now when the disk lets us; else the next commit does.
        _ = state.withLock { state -> Bool in (try? applyUnapplied(&state)) != nil }
    }

    public var revision: UInt64 { state.withLock { $0.revision } }

    public func list(prefix: String) throws(StoreError) -> [StoredEntry] {
        state.withLock { state in
            state.entries.values.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }
        }
    }

    @discardableResult
    public func commit(_ operations: [StoreOperation], expect: [String: UInt64?]) throws(StoreError) -> UInt64 {
        let result: Result<UInt64, StoreError> = state.withLock { state in
            for (key, expected) in expect where state.entries[key]?.modRevision != expected {
                return .failure(StoreError(key: key, message: "changed concurrently (compare failed)"))
            }
            do throws(StoreError) {
                // One journal at a time: an earlier commit's files are brought up to date first.
                try applyUnapplied(&state)
                let journal = Journal(revision: state.revision + 1, operations: operations)
                try write(Array(journal.json.encoded().utf8), to: journalPath)
                // The commit point is passed: from here the transaction holds, in memory now and on
                // disk at the latest when the journal is applied.
                Self.applyInMemory(journal, to: &state)
                state.unapplied = journal
                try? applyUnapplied(&state)
                return .success(journal.revision)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Applies the unapplied journal's operations to the record files, then the revision file,
    /// then removes the journal. Idempotent: a crash at any point is finished by doing it again.
    private func applyUnapplied(_ state: inout State) throws(StoreError) {
        guard let journal = state.unapplied else { return }
        for operation in journal.operations {
            switch operation {
            case .put(let key, let value):
                let document = JSONValue.object([("ModRevision", .int(Int64(journal.revision))), ("Value", value)])
                try write(Array(document.encoded(pretty: true).utf8), to: path(for: key))
            case .delete(let key):
                try remove(path(for: key))
            }
        }
        let revisionDocument = JSONValue.object([("Revision", .int(Int64(journal.revision)))])
        try write(Array(revisionDocument.encoded(pretty: true).utf8), to: root + "/revision.json")
        try remove(journalPath)
        state.unapplied = nil
    }

    private static func applyInMemory(_ journal: Journal, to state: inout State) {
        for operation in journal.operations {
            switch operation {
            case .put(let key, let value): state.entries[key] = StoredEntry(key: key, value: value, modRevision: journal.revision)
            case .delete(let key): state.entries.removeValue(forKey: key)
            }
        }
        state.revision = max(state.revision, journal.revision)
    }

    private func write(_ bytes: [UInt8], to path: String) throws(StoreError) {
        try faults?.check(path)
        try AtomicFile.write(bytes, to: path)
    }

    private func remove(_ path: String) throws(StoreError) {
        try faults?.check(path)
        try AtomicFile.remove(path)
    }

    public func quarantine(key: String, reason: String) -> QuarantinedEntry {
        state.withLock { state in
            state.entries.removeValue(forKey: key)
            let file = path(for: key)
            let relative = String(file.dropFirst(root.count + 1))
            return Self.quarantine(file, relative: relative, into: quarantineDirectory, reason: reason)
        }
    }

    /// Keys are `kind/name`; the name is percent-encoded so any service ID is a safe file name.
    func path(for key: String) -> String {
        let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return root + "/" + Self.encode(key) + ".json" }
        return root + "/" + parts[0] + "/" + Self.encode(parts[1]) + ".json"
    }

    static func key(fromRelativePath relative: String) -> String {
        let parts = relative.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return decode(relative) }
        return parts[0] + "/" + decode(parts[1])
    }

    static func encode(_ name: String) -> String {
        var result = ""
        for byte in name.utf8 {
            let character = Character(Unicode.Scalar(byte))
            if byte < 0x80 && (character.isLetter || character.isNumber || "-_".contains(character)) {
                result.append(character)
            } else {
                result += String(format: "%%%02X", byte)
            }
        }
        return result
    }

    static func decode(_ name: String) -> String {
        name.removingPercentEncoding ?? name
    }

    private static func quarantine(_ path: String, relative: String, into directory: String, reason: String) -> QuarantinedEntry {
        let stamp = Int(Date().timeIntervalSince1970)
        let destination = directory + "/" + relative.replacingOccurrences(of: "/", with: "_") + ".\(stamp)"
        try? AtomicFile.makeDirectory(directory)
        if rename(path, destination) != 0 {
            try? AtomicFile.remove(path)
            return QuarantinedEntry(key: relative, movedTo: "(removed: could not move)", reason: reason)
        }
        return QuarantinedEntry(key: relative, movedTo: destination, reason: reason)
    }
}
