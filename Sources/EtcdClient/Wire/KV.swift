// etcd's key-value messages as the JSON gateway spells them (`/v3/kv/range`, `/put`,
// `/deleterange`): keys and values are base64 (Foundation's default for Data), 64-bit integers
// strings, and a response omits every field that is zero, false or empty. Every key below is
// written out, because the gateway ignores a misspelled field silently.

import Foundation

public struct ResponseHeader: Codable, Sendable, Equatable {
    public var revision: WireInt?
    public var raftTerm: WireInt?

    enum CodingKeys: String, CodingKey {
        case revision
        case raftTerm = "raft_term"
    }

    /// The store revision this answer reflects (0 when the gateway left it out).
    public var currentRevision: Int64 { revision?.value ?? 0 }
}

public struct KeyValue: Codable, Sendable, Equatable {
    public var key: Data
    public var value: Data?
    public var createRevision: WireInt?
    public var modRevision: WireInt?
    public var version: WireInt?
    public var lease: WireInt?

    enum CodingKeys: String, CodingKey {
        case key, value, version, lease
        case createRevision = "create_revision"
        case modRevision = "mod_revision"
    }

    public init(key: Data, value: Data?, createRevision: Int64? = nil, modRevision: Int64? = nil, lease: Int64? = nil) {
        self.key = key
        self.value = value
        self.createRevision = createRevision.map { WireInt($0) }
        self.modRevision = modRevision.map { WireInt($0) }
        self.lease = lease.map { WireInt($0) }
    }
}

public struct RangeRequest: Codable, Sendable, Equatable {
    public var key: Data
    /// One past the last key; `\0` for every key from `key` on; nil for `key` alone.
    public var rangeEnd: Data?
    public var limit: WireInt?
    /// Read as of this revision (MVCC); nil for the current one.
    public var revision: WireInt?
    /// Answer from the member's own copy without asking the leader (may be stale).
    public var serializable: Bool?
    public var keysOnly: Bool?
    public var countOnly: Bool?

    enum CodingKeys: String, CodingKey {
        case key, limit, revision, serializable
        case rangeEnd = "range_end"
        case keysOnly = "keys_only"
        case countOnly = "count_only"
    }

    public init(key: Data, rangeEnd: Data? = nil, limit: Int64? = nil, revision: Int64? = nil, serializable: Bool? = nil,
                keysOnly: Bool? = nil, countOnly: Bool? = nil) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.limit = limit.map { WireInt($0) }
        self.revision = revision.map { WireInt($0) }
        self.serializable = serializable
        self.keysOnly = keysOnly
        self.countOnly = countOnly
    }

    /// Every key that starts with `prefix`.
    public static func prefix(_ prefix: Data, revision: Int64? = nil, limit: Int64? = nil) -> RangeRequest {
        RangeRequest(key: prefix, rangeEnd: KeyRange.end(ofPrefix: prefix), limit: limit, revision: revision)
    }
}

public struct RangeResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
    public var kvs: [KeyValue]?
    public var more: Bool?
    public var count: WireInt?

    public var values: [KeyValue] { kvs ?? [] }
}

public struct PutRequest: Codable, Sendable, Equatable {
    public var key: Data
    public var value: Data
    public var lease: WireInt?
    public var prevKv: Bool?

    enum CodingKeys: String, CodingKey {
        case key, value, lease
        case prevKv = "prev_kv"
    }

    public init(key: Data, value: Data, lease: Int64? = nil, prevKv: Bool? = nil) {
        self.key = key
        self.value = value
        self.lease = lease.map { WireInt($0) }
        self.prevKv = prevKv
    }
}

public struct PutResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
    public var prevKv: KeyValue?

    enum CodingKeys: String, CodingKey {
        case header
        case prevKv = "prev_kv"
    }
}

public struct DeleteRangeRequest: Codable, Sendable, Equatable {
    public var key: Data
    public var rangeEnd: Data?
    public var prevKv: Bool?

    enum CodingKeys: String, CodingKey {
        case key
        case rangeEnd = "range_end"
        case prevKv = "prev_kv"
    }

    public init(key: Data, rangeEnd: Data? = nil, prevKv: Bool? = nil) {
        self.key = key
        self.rangeEnd = rangeEnd
        self.prevKv = prevKv
    }
}

public struct DeleteRangeResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
    public var deleted: WireInt?
    public var prevKvs: [KeyValue]?

    enum CodingKeys: String, CodingKey {
        case header, deleted
        case prevKvs = "prev_kvs"
    }
}

public enum KeyRange {
    /// The `range_end` that selects every key starting with `prefix`: the prefix with its last
    /// byte below 0xff incremented (and what follows dropped); `\0` (everything) when all are 0xff.
    public static func end(ofPrefix prefix: Data) -> Data {
        var bytes = [UInt8](prefix)
        while let last = bytes.last {
            if last < 0xff {
                bytes[bytes.count - 1] = last + 1
                return Data(bytes)
            }
            bytes.removeLast()
        }
        return Data([0])
    }
}

/// An answer that carries etcd's response header (the store's revision when it answered).
public protocol CarriesResponseHeader {
    var header: ResponseHeader? { get }
}

extension RangeResponse: CarriesResponseHeader {}
extension PutResponse: CarriesResponseHeader {}
extension DeleteRangeResponse: CarriesResponseHeader {}
extension TxnResponse: CarriesResponseHeader {}
extension LeaseGrantResponse: CarriesResponseHeader {}
extension LeaseRevokeResponse: CarriesResponseHeader {}
extension LeaseKeepAliveResponse: CarriesResponseHeader {
    public var header: ResponseHeader? { result?.header }
}
