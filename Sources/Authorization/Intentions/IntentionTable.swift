// Intentions as a value: the agent's API-created and config-file intentions, with the
// transitions that produce the next table (create, update, delete, apply the config files) and
// a per-destination match list for authorize. AgentState commits and publishes the result.

import AgentConfig
import AgentStore
import ConnectdCore
import Crypto
import Foundation
import Synchronization

public enum IntentionError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalid(String)
    case notFound(String)
    case persistence(String)

    public var description: String {
        switch self {
        case .invalid(let message), .notFound(let message): message
        case .persistence(let message): "cannot save intentions: \(message)"
        }
    }
}

/// The fields a client sets on an intention.
public struct IntentionInput: Sendable, Equatable {
    public var sourceNS = "default"
    public var sourceName = ""
    public var destinationNS = "default"
    public var destinationName = ""
    public var sourceType = "consul"
    public var action = ""
    public var description = ""
    public var meta: [String: String] = [:]

    public init() {}

    public init(_ definition: IntentionDefinition) {
        sourceName = definition.sourceName
        destinationName = definition.destinationName
        action = definition.action
        description = definition.description
        meta = definition.meta
    }

    /// Consul's validation texts.
    func validate() throws(IntentionError) {
        var definition = IntentionDefinition(sourceName: sourceName, destinationName: destinationName, action: action)
        definition.description = description
        if let (_, message) = IntentionDefinition.validate(definition).first { throw .invalid(message) }
        for (label, value) in [("SourceNS", sourceNS), ("DestinationNS", destinationNS)] where value != "default" && value != "*" {
            throw .invalid("\(label) must be \"default\" or \"*\" (connectd has one namespace)")
        }
        if sourceNS == "*" && sourceName != "*" { throw .invalid("SourceName: wildcard namespace with non-wildcard name is not allowed") }
        if destinationNS == "*" && destinationName != "*" {
            throw .invalid("DestinationName: wildcard namespace with non-wildcard name is not allowed")
        }
        if sourceType != "consul" { throw .invalid("SourceType must be set to 'consul'") }
        if meta.count > 64 { throw .invalid("Meta must have at most 64 keys") }
    }
}

/// Every intention, by ID, and the index of the last change to any of them.
public struct IntentionTable: Sendable, Equatable {
    public private(set) var intentions: [String: Intention] = [:] {
        didSet { memo = MatchMemo() }
    }
    /// The store revision of the last change (`X-Consul-Index` of the intention endpoints).
    public var index: UInt64 = 1
    /// Per-destination match lists, filled lazily; a new table starts with an empty one.
    private var memo = MatchMemo()

    public init() {}

    /// A table holding exactly `intentions` (fleet mode: as read from etcd, with its indexes).
    public init(shared intentions: [Intention], index: UInt64) {
        self.intentions = Dictionary(intentions.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        self.index = max(index, 1)
    }

    public static func == (lhs: IntentionTable, rhs: IntentionTable) -> Bool {
        lhs.index == rhs.index && lhs.intentions == rhs.intentions
    }

    // MARK: - Reading

    /// Every intention, in match order.
    public func list() -> [Intention] { intentions.values.sorted(by: Intention.ordered) }

    public func get(_ id: String) -> Intention? { intentions[id] }

    /// Intentions whose destination is `name` (or a wildcard), in match order.
    public func matches(destination name: String) -> [Intention] {
        memo.list(for: name) {
            intentions.values.filter { $0.destinationName == "*" || $0.destinationName == name }.sorted(by: Intention.ordered)
        }
    }

    /// Intentions whose source is `name` (or a wildcard), in match order.
    public func matches(source name: String) -> [Intention] {
        list().filter { $0.sourceName == "*" || $0.sourceName == name }
    }

    /// The first intention for `destination` whose source matches, as authorize uses it.
    public func decide(destination: String, sourceNamespace: String, sourceService: String) -> Intention? {
        matches(destination: destination).first { $0.matchesSource(namespace: sourceNamespace, service: sourceService) }
    }

    // MARK: - Transitions

    /// The table with a new intention (a new random ID); indexes are those of the write that stores it.
    public func creating(_ input: IntentionInput, now: Date = Date()) throws(IntentionError) -> (IntentionTable, Intention) {
        try input.validate()
        var intention = Intention(id: UUID().uuidString.lowercased(), sourceName: input.sourceName,
                                  destinationName: input.destinationName, action: input.action, now: now)
        Self.apply(input, to: &intention)
        var next = self
        try next.put(intention, checkDuplicates: true)
        return (next, intention)
    }

    /// The table with intention `id`'s fields replaced.
    public func updating(_ id: String, _ input: IntentionInput, now: Date = Date()) throws(IntentionError) -> IntentionTable {
        try input.validate()
        guard var intention = intentions[id] else { throw .notFound("Cannot update non-existent intention: '\(id)'") }
        guard intention.origin == .api else { throw .invalid("intention \(id) is defined in a config file; change it there") }
        Self.apply(input, to: &intention)
        intention.updatedAt = Timestamp(now)
        var next = self
        try next.put(intention, checkDuplicates: true)
        return next
    }

    public func deleting(_ id: String) throws(IntentionError) -> IntentionTable {
        guard let intention = intentions[id] else { throw .notFound("Cannot delete non-existent intention: '\(id)'") }
        guard intention.origin == .api else { throw .invalid("intention \(id) is defined in a config file; remove it there") }
        var next = self
        next.intentions.removeValue(forKey: id)
        return next
    }

    /// The table with the config-file intentions replaced by `definitions` (start and reload);
    /// a config intention replaces an API one with the same source and destination, returned in
    /// `replaced` so the caller can say so.
    public func applyingConfig(_ definitions: [IntentionDefinition],
                               now: Date = Date()) throws(IntentionError) -> (table: IntentionTable, replaced: [Intention]) {
        var next = self
        var keep: Set<String> = []
        var replaced: [Intention] = []
        for definition in definitions {
            let input = IntentionInput(definition)
            try input.validate()
            let id = Self.configID(source: definition.sourceName, destination: definition.destinationName)
            keep.insert(id)
            var intention = intentions[id] ?? Intention(id: id, sourceName: input.sourceName, destinationName: input.destinationName,
                                                        action: input.action, now: now)
            intention.origin = .config
            let before = intention
            Self.apply(input, to: &intention)
            guard intentions[id] == nil || intention != before else { continue }
            if intentions[id] != nil { intention.updatedAt = Timestamp(now) }
            for other in next.intentions.values where other.origin == .api && other.sourceName == intention.sourceName
                && other.destinationName == intention.destinationName && other.sourceNS == intention.sourceNS
                && other.destinationNS == intention.destinationNS {
                replaced.append(other)
                next.intentions.removeValue(forKey: other.id)
            }
            try next.put(intention, checkDuplicates: false)
        }
        for intention in intentions.values where intention.origin == .config && !keep.contains(intention.id) {
            next.intentions.removeValue(forKey: intention.id)
        }
        return (next, replaced)
    }

    /// Adds or replaces `intention`, marking its indexes for the write that stores it.
    private mutating func put(_ intention: Intention, checkDuplicates: Bool) throws(IntentionError) {
        if checkDuplicates, let duplicate = intentions.values.first(where: {
            $0.id != intention.id && $0.sourceNS == intention.sourceNS && $0.sourceName == intention.sourceName
                && $0.destinationNS == intention.destinationNS && $0.destinationName == intention.destinationName
        }) {
            throw .invalid("duplicate intention found: \(duplicate.summary)")
        }
        var stored = intention
        if intentions[intention.id] == nil { stored.createIndex = 0 }
        stored.modifyIndex = 0
        intentions[intention.id] = stored
    }

    private static func apply(_ input: IntentionInput, to intention: inout Intention) {
        intention.sourceNS = input.sourceNS
        intention.sourceName = input.sourceName
        intention.destinationNS = input.destinationNS
        intention.destinationName = input.destinationName
        intention.sourceType = input.sourceType
        intention.action = input.action
        intention.description = input.description
        intention.meta = input.meta
    }

    /// A stable ID for a config-file intention, so reloads keep it.
    static func configID(source: String, destination: String) -> String {
        let digest = Array(SHA256.hash(data: Array("connectd-config-intention\u{0}\(source)\u{0}\(destination)".utf8)))
        let hex = digest.prefix(16).map { String(format: "%02x", $0) }.joined()
        let characters = Array(hex)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(characters[$0]) }.joined(separator: "-")
    }

    // MARK: - Records

    public static let keyPrefix = "intentions/"

    /// The table kept in `entries` (keys under `intentions/`); records of the wrong shape are
    /// handed to `unusable` (to be quarantined) and skipped. The index starts at `revision`, the
    /// store's: never below an index a client saw before the restart.
    public static func load(_ entries: [StoredEntry], revision: UInt64,
                            unusable: (StoredEntry) -> Void) -> IntentionTable {
        var table = IntentionTable()
        for entry in entries {
            guard var intention = Intention(stored: entry.value) else {
                unusable(entry)
                continue
            }
            if intention.createIndex == 0 { intention.createIndex = entry.modRevision }
            if intention.modifyIndex == 0 { intention.modifyIndex = entry.modRevision }
            table.intentions[intention.id] = intention
        }
        table.index = max(1, revision)
        return table
    }

    /// The puts and deletes that turn `previous` into this table.
    public func operations(from previous: IntentionTable) -> [StoreOperation] {
        var operations: [StoreOperation] = []
        for id in previous.intentions.keys.sorted() where intentions[id] == nil {
            operations.append(.delete(key: Self.keyPrefix + id))
        }
        for (id, intention) in intentions.sorted(by: { $0.key < $1.key }) where previous.intentions[id] != intention {
            operations.append(.put(key: Self.keyPrefix + id, value: intention.storedJSON))
        }
        return operations
    }

    /// This table as committed at `revision`: indexes left at 0 become `revision`, and the
    /// table's index moves when anything differs from `previous`.
    public func stamped(revision: UInt64, previous: IntentionTable) -> IntentionTable {
        guard intentions != previous.intentions else { return self }
        var next = self
        for (id, intention) in intentions where intention.createIndex == 0 || intention.modifyIndex == 0 {
            var stamped = intention
            if stamped.createIndex == 0 { stamped.createIndex = revision }
            if stamped.modifyIndex == 0 { stamped.modifyIndex = revision }
            next.intentions[id] = stamped
        }
        next.index = revision
        return next
    }
}

/// Per-destination match lists of one table, computed on first use.
final class MatchMemo: Sendable {
    private let lists = Mutex<[String: [Intention]]>([:])

    func list(for destination: String, _ compute: () -> [Intention]) -> [Intention] {
        if let cached = lists.withLock({ $0[destination] }) { return cached }
        let list = compute()
        lists.withLock { $0[destination] = list }
        return list
    }
}
