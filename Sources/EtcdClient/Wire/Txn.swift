// etcd's transaction (`/v3/kv/txn`): compares, then the success or the failure operations, all
// at one revision. A failed transaction's answer has no `succeeded` field at all.

import Foundation

public struct Compare: Codable, Sendable, Equatable {
    public enum Target: String, Codable, Sendable {
        case version = "VERSION", create = "CREATE", mod = "MOD", value = "VALUE", lease = "LEASE"
    }

    public enum Result: String, Codable, Sendable {
        case equal = "EQUAL", greater = "GREATER", less = "LESS", notEqual = "NOT_EQUAL"
    }

    public var target: Target
    public var key: Data
    public var result: Result
    public var version: WireInt?
    public var createRevision: WireInt?
    public var modRevision: WireInt?
    public var value: Data?

    enum CodingKeys: String, CodingKey {
        case target, key, result, version, value
        case createRevision = "create_revision"
        case modRevision = "mod_revision"
    }

    /// The key does not exist (its create revision is 0).
    public static func absent(_ key: Data) -> Compare {
        Compare(target: .create, key: key, result: .equal, createRevision: 0)
    }

    /// The key was last written at `revision` (0: it does not exist).
    public static func modified(_ key: Data, at revision: Int64) -> Compare {
        Compare(target: .mod, key: key, result: .equal, modRevision: WireInt(revision))
    }
}

public struct RequestOp: Codable, Sendable, Equatable {
    public var requestRange: RangeRequest?
    public var requestPut: PutRequest?
    public var requestDeleteRange: DeleteRangeRequest?

    enum CodingKeys: String, CodingKey {
        case requestRange = "request_range"
        case requestPut = "request_put"
        case requestDeleteRange = "request_delete_range"
    }

    public static func range(_ request: RangeRequest) -> RequestOp { RequestOp(requestRange: request) }
    public static func put(_ request: PutRequest) -> RequestOp { RequestOp(requestPut: request) }
    public static func delete(_ request: DeleteRangeRequest) -> RequestOp { RequestOp(requestDeleteRange: request) }
}

public struct TxnRequest: Codable, Sendable, Equatable {
    public var compare: [Compare]
    public var success: [RequestOp]
    public var failure: [RequestOp]

    public init(compare: [Compare], success: [RequestOp], failure: [RequestOp] = []) {
        self.compare = compare
        self.success = success
        self.failure = failure
    }
}

public struct ResponseOp: Codable, Sendable, Equatable {
    public var responseRange: RangeResponse?
    public var responsePut: PutResponse?
    public var responseDeleteRange: DeleteRangeResponse?

    enum CodingKeys: String, CodingKey {
        case responseRange = "response_range"
        case responsePut = "response_put"
        case responseDeleteRange = "response_delete_range"
    }
}

public struct TxnResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
    public var succeeded: Bool?
    public var responses: [ResponseOp]?

    /// Whether the compares held and the success operations ran.
    public var applied: Bool { succeeded ?? false }
}
