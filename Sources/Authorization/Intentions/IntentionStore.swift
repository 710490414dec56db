// Intentions in memory, persisted through the durable store: API-created ones and the
// declarative ones of config files. Lookups for authorize read a per-destination match list.

import AgentConfig
import AgentState
import AgentStore
import ConnectdCore
import Crypto
import Foundation
import Logging
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

public final class IntentionStore: Sendable {
    private struct State {
        var intentions: [String: Intention] = [:]
        var revisions: [String: UInt64] = [:]
        /// Intentions that apply to a destination, in match order; filled lazily, cleared on change.
        var matchCache: [String: [Intention]] = [:]
        var index: UInt64
    }

    private let store: any DurableStore
    private let state: Mutex<State>
    private let logger: Logger
    public let watch: IndexWatch

    public init(store: any DurableStore, logger: Logger) {
        self.store = store
        self.logger = logger
        var loaded = State(index: 1)
        do {
            for entry in try store.list(prefix: "intentions/") {
                guard var intention = Intention(stored: entry.value) else {
                    store.quarantine(entry.key, reason: "not an intention record", logger: logger)
                    continue
                }
                // 0 marks an index the write that stored it did not know yet: that write's revision.
                if intention.createIndex == 0 { intention.createIndex = entry.modRevision }
                if intention.modifyIndex == 0 { intention.modifyIndex = entry.modRevision }
                loaded.intentions[intention.id] = intention
                loaded.revisions[intention.id] = entry.modRevision
                loaded.index = max(loaded.index, entry.modRevision)
            }
        } catch {
            logger.error("cannot list stored intentions", metadata: ["error": "\(error)"])
        }
        state = Mutex(loaded)
        watch = IndexWatch(index: loaded.index)
    }

    // MARK: - Reading

    public var index: UInt64 { state.withLock { $0.index } }

    /// Every intention, in match order.
    public func list() -> [Intention] {
        state.withLock { Array($0.intentions.values) }.sorted(by: Intention.ordered)
    }

    public func get(_ id: String) -> Intention? { state.withLock { $0.intentions[id] } }

    /// Intentions whose destination is `name` (or a wildcard), in match order.
    public func matches(destination name: String) -> [Intention] {
        state.withLock { state in
            if let cached = state.matchCache[name] { return cached }
            let list = state.intentions.values.filter { $0.destinationName == "*" || $0.destinationName == name }
                .sorted(by: Intention.ordered)
            state.matchCache[name] = list
            return list
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

    // MARK: - Changes

    /// Creates an intention with a new ID.
    public func create(_ input: IntentionInput, now: Date = Date()) throws(IntentionError) -> Intention {
        try input.validate()
        var intention = Intention(id: UUID().uuidString.lowercased(), sourceName: input.sourceName,
                                  destinationName: input.destinationName, action: input.action, now: now)
        apply(input, to: &intention)
        try commit(put: [intention], delete: [])
        return get(intention.id) ?? intention
    }

    /// Replaces the fields of intention `id`.
    public func update(_ id: String, _ input: IntentionInput, now: Date = Date()) throws(IntentionError) -> Intention {
        try input.validate()
        guard var intention = get(id) else { throw .notFound("Cannot update non-existent intention: '\(id)'") }
        guard intention.origin == .api else {
            throw .invalid("intention \(id) is defined in a config file; change it there")
        }
        apply(input, to: &intention)
        intention.updatedAt = Timestamp(now)
        try commit(put: [intention], delete: [])
        return get(id) ?? intention
    }

    public func delete(_ id: String) throws(IntentionError) {
        guard let intention = get(id) else { throw .notFound("Cannot delete non-existent intention: '\(id)'") }
        guard intention.origin == .api else {
            throw .invalid("intention \(id) is defined in a config file; remove it there")
        }
        try commit(put: [], delete: [id])
    }

    /// Replaces the config-file intentions with `definitions` (start and reload). A config
    /// intention replaces an API one with the same source and destination.
    public func applyConfig(_ definitions: [IntentionDefinition], now: Date = Date()) throws(IntentionError) {
        let current = state.withLock { $0.intentions }
        var put: [Intention] = []
        var keep: Set<String> = []
        for definition in definitions {
            let input = IntentionInput(definition)
            try input.validate()
            let id = Self.configID(source: definition.sourceName, destination: definition.destinationName)
            keep.insert(id)
            var intention = current[id] ?? Intention(id: id, sourceName: input.sourceName, destinationName: input.destinationName,
                                                     action: input.action, now: now)
            intention.origin = .config
            let before = intention
            apply(input, to: &intention)
            if current[id] == nil || intention != before {
                if current[id] != nil { intention.updatedAt = Timestamp(now) }
                put.append(intention)
            }
        }
        var delete = current.values.filter { $0.origin == .config && !keep.contains($0.id) }.map(\.id)
        for intention in put {
            for other in current.values where other.origin == .api && other.sourceName == intention.sourceName
                && other.destinationName == intention.destinationName && other.sourceNS == intention.sourceNS
                && other.destinationNS == intention.destinationNS {
                logger.warning("an API intention is replaced by a config file intention", metadata: ["intention": "\(other.summary)"])
                delete.append(other.id)
            }
        }
        guard !put.isEmpty || !delete.isEmpty else { return }
        try commit(put: put, delete: delete, checkDuplicates: false)
    }

    private func apply(_ input: IntentionInput, to intention: inout Intention) {
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

    private func commit(put: [Intention], delete: [String], checkDuplicates: Bool = true) throws(IntentionError) {
        let revision = try state.withLock { state throws(IntentionError) -> UInt64 in
            var next = state.intentions
            for id in delete { next.removeValue(forKey: id) }
            for intention in put {
                if checkDuplicates, let duplicate = next.values.first(where: {
                    $0.id != intention.id && $0.sourceNS == intention.sourceNS && $0.sourceName == intention.sourceName
                        && $0.destinationNS == intention.destinationNS && $0.destinationName == intention.destinationName
                }) {
                    throw .invalid("duplicate intention found: \(duplicate.summary)")
                }
                next[intention.id] = intention
            }
            var operations: [StoreOperation] = delete.map { .delete(key: "intentions/\($0)") }
            // Indexes are filled from the revision after the commit; 0 marks "this write".
            for intention in put {
                var stored = intention
                if state.intentions[intention.id] == nil { stored.createIndex = 0 }
                stored.modifyIndex = 0
                operations.append(.put(key: "intentions/\(intention.id)", value: stored.storedJSON))
            }
            let revision: UInt64
            do throws(StoreError) {
                revision = try store.commit(operations)
            } catch {
                throw .persistence("\(error)")
            }
            for intention in put {
                if next[intention.id]!.createIndex == 0 || state.intentions[intention.id] == nil { next[intention.id]!.createIndex = revision }
                next[intention.id]!.modifyIndex = revision
                state.revisions[intention.id] = revision
            }
            for id in delete { state.revisions.removeValue(forKey: id) }
            state.intentions = next
            state.matchCache.removeAll()
            state.index = revision
            return revision
        }
        watch.advance(to: revision)
    }
}
