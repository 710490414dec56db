// DurableStore on plain JSON files under `<data_dir>/state`, one file per key.

import ConnectdCore
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Each key `a/b` is the file `<root>/a/b.json` holding `{"ModRevision": N, "Value": ...}`;
/// `<root>/revision.json` holds the store revision. At open, half-written temp files are
/// removed; an unreadable record is moved to `<data_dir>/quarantine/` (see ``quarantined``),
/// except under a protected prefix (``protectedPrefixes``: the CA, the agent's identity, intentions),
/// where it stays in place and is reported in ``damaged`` for the agent to refuse to start on:
/// losing those records must never pass silently.
///
/// A commit is one transaction: its operations are first written, as one atomic file, to
/// `<root>/journal.json` (the commit point), then applied to the record files and the revision
/// file. A commit whose journal could not be written changed nothing, on disk or in memory, and
/// throws; once the journal is down the commit holds, and a crash or a failed write while
/// applying it is finished from the journal (at the next commit, or at the next open).
///
/// The journal stays after it is applied, as a second copy of the revision: the revision at
/// open is the highest of `revision.json`, the journal's and every record's, so it never goes
/// backwards when one of the two files is damaged. When both are unusable while records exist,
/// the revision cannot be known and ``damaged`` names `revision.json`.
public final class FileStore: DurableStore {
    public let dataDir: String
    /// `<data_dir>/state`.
    public let root: String
    public let quarantineDirectory: String
    private let state: Mutex<State>

    /// Key prefixes whose unreadable records are never moved aside at open (see ``damaged``):
    /// the CA and the node's identity, and intentions (a lost deny would silently allow traffic).
    public static let protectedPrefixes = ["ca/", "agent/", "intentions/"]

    private struct State {
        var revision: UInt64
        var entries: [String: StoredEntry]
        /// A committed journal not yet fully applied to the record files.
        var unapplied: Journal?
    }

    /// A file the store could not read and did not move: the caller decides (the agent refuses
    /// to start and names it).
    public struct DamagedFile: Sendable, Equatable, CustomStringConvertible {
        /// The path under `state/`, e.g. `ca/roots.json`.
        public var relativePath: String
        public var path: String
        public var reason: String
        public var description: String { "state/\(relativePath): \(reason)" }

        public init(relativePath: String, path: String, reason: String) {
            self.relativePath = relativePath
            self.path = path
            self.reason = reason
        }
    }

    private let faults: StoreFaults?
    private var journalPath: String { root + "/journal.json" }

    /// Problems found at open: files moved aside, with why.
    public let quarantined: [QuarantinedEntry]
    /// Files found unreadable at open and left in place: protected records, or a revision that
    /// neither `revision.json` nor the journal can vouch for.
    public let damaged: [DamagedFile]

    /// Opens (creating when missing) the store under `dataDir`, finishing a committed journal
    /// that a crash left unapplied.
    ///
    /// - Parameter faults: for tests: fails a chosen file write, as a full disk would.
    public init(dataDir: String, faults: StoreFaults? = nil) throws(StoreError) {
        self.dataDir = dataDir
        root = dataDir + "/state"
        quarantineDirectory = dataDir + "/quarantine"
        self.faults = faults
        try AtomicFile.makeDirectory(root)
        var entries: [String: StoredEntry] = [:]
        var moved: [QuarantinedEntry] = []
        var damaged: [DamagedFile] = []
        var highestRecord: UInt64 = 0
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
            guard relative.hasSuffix(".json"), relative != "journal.json", relative != "revision.json" else { continue }
            let key = Self.key(fromRelativePath: String(relative.dropLast(5)))
            let reason: String
            do {
                let document = try JSONParser.parse(AtomicFile.read(path))
                if case .int(let modRevision)? = document["ModRevision"], modRevision >= 0, let value = document["Value"] {
                    entries[key] = StoredEntry(key: key, value: value, modRevision: UInt64(modRevision))
                    highestRecord = max(highestRecord, UInt64(modRevision))
                    continue
                }
                reason = "missing ModRevision or Value"
            } catch {
                reason = "\(error)"
            }
            if Self.protectedPrefixes.contains(where: key.hasPrefix) {
                damaged.append(DamagedFile(relativePath: relative, path: path, reason: reason))
            } else {
                moved.append(Self.quarantine(path, relative: relative, into: quarantineDirectory, reason: reason))
            }
        }
        let revisionPath = root + "/revision.json"
        let revisionFile = Self.readRevisionFile(revisionPath)
        var journal: Journal?
        if access(root + "/journal.json", F_OK) == 0 {
            journal = Journal.read(root + "/journal.json")
            if journal == nil {
                // Written by rename, a journal is whole or absent; an unreadable one is damage.
                moved.append(Self.quarantine(root + "/journal.json", relative: "journal.json", into: quarantineDirectory,
                                             reason: "unreadable journal"))
            }
        }
        var loaded = State(revision: max(highestRecord, revisionFile.revision ?? 0, journal?.revision ?? 0), entries: entries)
        if let journal, journal.revision > (revisionFile.revision ?? 0) {
            // Committed but maybe not (fully) applied: apply it again (idempotent).
            Self.applyInMemory(journal, to: &loaded)
            loaded.unapplied = journal
        }
        if revisionFile.damaged {
            if journal == nil, !entries.isEmpty || !damaged.isEmpty {
                damaged.append(DamagedFile(relativePath: "revision.json", path: revisionPath,
                                           reason: "unreadable, and no journal.json vouches for the last revision"))
            } else {
                moved.append(Self.quarantine(revisionPath, relative: "revision.json", into: quarantineDirectory,
                                             reason: "unreadable revision file (the journal holds the revision)"))
                loaded.unapplied = loaded.unapplied ?? journal
            }
        }
        state = Mutex(loaded)
        quarantined = moved
        self.damaged = damaged
        // Finish it now when the disk lets us; else the next commit does.
        _ = state.withLock { state -> Bool in (try? applyUnapplied(&state)) != nil }
    }

    /// `revision.json`'s revision; `damaged` when the file is there but unreadable.
    private static func readRevisionFile(_ path: String) -> (revision: UInt64?, damaged: Bool) {
        guard access(path, F_OK) == 0 else { return (nil, false) }
        guard let value = try? JSONParser.parse(AtomicFile.read(path)), case .int(let stored)? = value["Revision"], stored >= 0 else {
            return (nil, true)
        }
        return (UInt64(stored), false)
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

    /// Applies the unapplied journal's operations to the record files, then the revision file.
    /// Idempotent: a crash at any point is finished by doing it again. The journal stays.
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

    /// Moves a damaged file (one of ``damaged``) into the quarantine directory; for offline repair.
    public func setAside(_ file: DamagedFile) -> QuarantinedEntry {
        Self.quarantine(file.path, relative: file.relativePath, into: quarantineDirectory, reason: file.reason)
    }

    /// Copies the record file of `key` into the quarantine directory (the record stays): a
    /// backup taken before an offline repair deletes it. Nil when the copy failed.
    public func backUp(key: String, reason: String) -> String? {
        let file = path(for: key)
        let relative = String(file.dropFirst(root.count + 1))
        let destination = Self.quarantinePath(relative, in: quarantineDirectory)
        guard (try? AtomicFile.makeDirectory(quarantineDirectory)) != nil,
              let bytes = try? AtomicFile.read(file), (try? AtomicFile.write(bytes, to: destination)) != nil
        else { return nil }
        return destination
    }

    /// Keys are `kind/name`; the name is percent-encoded so any service ID is a safe file name.
    public func path(for key: String) -> String {
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

    /// Where a file under `state/` goes in the quarantine directory: its path flattened, stamped.
    private static func quarantinePath(_ relative: String, in directory: String) -> String {
        directory + "/" + relative.replacingOccurrences(of: "/", with: "_") + ".\(Int(Date().timeIntervalSince1970))"
    }

    private static func quarantine(_ path: String, relative: String, into directory: String, reason: String) -> QuarantinedEntry {
        let destination = quarantinePath(relative, in: directory)
        try? AtomicFile.makeDirectory(directory)
        if rename(path, destination) != 0 {
            try? AtomicFile.remove(path)
            return QuarantinedEntry(key: relative, movedTo: "(removed: could not move)", reason: reason)
        }
        return QuarantinedEntry(key: relative, movedTo: destination, reason: reason)
    }
}
