// The small store interface behind the durable, shareable parts of the state.
// The file store under data_dir is the first implementation; a distributed store (etcd) can
// implement the same three calls later without AgentState changing shape.

import ConnectdCore

/// One stored value and the store revision that last wrote it.
public struct StoredEntry: Sendable, Equatable {
    public var key: String
    public var value: JSONValue
    public var modRevision: UInt64

    public init(key: String, value: JSONValue, modRevision: UInt64) {
        self.key = key
        self.value = value
        self.modRevision = modRevision
    }
}

/// One step of a transaction.
public enum StoreOperation: Sendable, Equatable {
    case put(key: String, value: JSONValue)
    case delete(key: String)
}

/// A failed read or write, naming the key and the cause.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var key: String
    public var message: String
    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }
    public var description: String { "state \(key): \(message)" }
}

/// A thrown-away record: a corrupt or half-written file moved aside at load.
public struct QuarantinedEntry: Sendable, Equatable {
    public var key: String
    public var movedTo: String
    public var reason: String

    public init(key: String, movedTo: String, reason: String) {
        self.key = key
        self.movedTo = movedTo
        self.reason = reason
    }
}

/// Durable key-value storage with a monotonic revision.
public protocol DurableStore: Sendable {
    /// The revision of the last committed transaction (0 for a new store).
    var revision: UInt64 { get }

    /// Every entry whose key starts with `prefix`, sorted by key.
    func list(prefix: String) throws(StoreError) -> [StoredEntry]

    /// Applies `operations` in order, as one revision, only if every key in `expect` still has
    /// the given mod revision (nil: must not exist). Returns the new revision.
    /// - Throws: ``StoreError`` on a failed compare or write; nothing is applied when a compare fails.
    @discardableResult
    func commit(_ operations: [StoreOperation], expect: [String: UInt64?]) throws(StoreError) -> UInt64

    /// Moves a record its reader cannot use (well-formed, but of the wrong shape) out of the
    /// store, keeping a copy aside for the operator; the key is gone afterwards. Not a revision:
    /// the record never counted as state.
    func quarantine(key: String, reason: String) -> QuarantinedEntry
}

extension DurableStore {
    @discardableResult
    public func commit(_ operations: [StoreOperation]) throws(StoreError) -> UInt64 {
        try commit(operations, expect: [:])
    }
}
