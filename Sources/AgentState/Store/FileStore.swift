// DurableStore on plain JSON files under `<data_dir>/state`, one file per key.

import ConnectdCore
import Foundation
import Synchronization

/// Each key `a/b` is the file `<root>/a/b.json` holding `{"ModRevision": N, "Value": ...}`;
/// `<root>/revision.json` holds the store revision. Every write is atomic per file.
/// At open, half-written temp files are removed and unreadable files are moved to
/// `<data_dir>/quarantine/` (see ``quarantined``): bad files never stop the agent.
public final class FileStore: DurableStore {
    public let root: String
    public let quarantineDirectory: String
    private let state: Mutex<State>

    private struct State {
        var revision: UInt64
        var entries: [String: StoredEntry]
    }

    /// Problems found at open: files moved aside, with why.
    public let quarantined: [QuarantinedEntry]

    /// Opens (creating when missing) the store under `dataDir`.
    public init(dataDir: String) throws(StoreError) {
        root = dataDir + "/state"
        quarantineDirectory = dataDir + "/quarantine"
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
        state = Mutex(State(revision: revision, entries: entries))
        quarantined = moved
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
            let newRevision = state.revision + 1
            do throws(StoreError) {
                for operation in operations {
                    switch operation {
                    case .put(let key, let value):
                        let document = JSONValue.object([("ModRevision", .int(Int64(newRevision))), ("Value", value)])
                        try AtomicFile.write(Array(document.encoded(pretty: true).utf8), to: path(for: key))
                        state.entries[key] = StoredEntry(key: key, value: value, modRevision: newRevision)
                    case .delete(let key):
                        try AtomicFile.remove(path(for: key))
                        state.entries.removeValue(forKey: key)
                    }
                }
                let revisionDocument = JSONValue.object([("Revision", .int(Int64(newRevision)))])
                try AtomicFile.write(Array(revisionDocument.encoded(pretty: true).utf8), to: root + "/revision.json")
            } catch {
                return .failure(error)
            }
            state.revision = newRevision
            return .success(newRevision)
        }
        return try result.get()
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
