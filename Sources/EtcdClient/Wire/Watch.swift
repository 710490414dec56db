// etcd's watch (`/v3/watch`) as the gateway streams it: one request body with a create_request,
// then one JSON object per line: `{"result":{…}}` (created, events, a progress notification,
// or canceled with the compact revision), or `{"error":{…}}` when the member has no leader.
// A PUT event carries no `type`; only DELETE does.

import Foundation

public struct WatchCreateRequest: Codable, Sendable, Equatable {
    public var key: Data
    public var rangeEnd: Data?
    public var startRevision: WireInt?
    public var progressNotify: Bool?
    public var prevKv: Bool?
    public var fragment: Bool?

    enum CodingKeys: String, CodingKey {
        case key, fragment
        case rangeEnd = "range_end"
        case startRevision = "start_revision"
        case progressNotify = "progress_notify"
        case prevKv = "prev_kv"
    }

    /// Every key under `prefix`, from `revision` on, with progress notifications, previous
    /// values and fragmented large answers.
    public static func prefix(_ prefix: Data, from revision: Int64) -> WatchCreateRequest {
        WatchCreateRequest(key: prefix, rangeEnd: KeyRange.end(ofPrefix: prefix), startRevision: WireInt(revision),
                           progressNotify: true, prevKv: true, fragment: true)
    }

    /// One key, from `revision` on, as ``prefix(_:from:)``.
    public static func key(_ key: Data, from revision: Int64) -> WatchCreateRequest {
        WatchCreateRequest(key: key, rangeEnd: nil, startRevision: WireInt(revision), progressNotify: true, prevKv: true, fragment: true)
    }
}

public struct WatchRequest: Codable, Sendable, Equatable {
    public var createRequest: WatchCreateRequest

    enum CodingKeys: String, CodingKey { case createRequest = "create_request" }
}

public struct WatchEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case put = "PUT", delete = "DELETE"
    }

    public var type: Kind?
    public var kv: KeyValue?
    public var prevKv: KeyValue?

    enum CodingKeys: String, CodingKey {
        case type, kv
        case prevKv = "prev_kv"
    }

    public var kind: Kind { type ?? .put }

    public init(kind: Kind, kv: KeyValue?, prevKv: KeyValue? = nil) {
        type = kind == .delete ? .delete : nil
        self.kv = kv
        self.prevKv = prevKv
    }
}

public struct WatchResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
    public var watchId: WireInt?
    public var created: Bool?
    public var canceled: Bool?
    public var compactRevision: WireInt?
    public var cancelReason: String?
    public var fragment: Bool?
    public var events: [WatchEvent]?

    enum CodingKeys: String, CodingKey {
        case header, created, canceled, fragment, events
        case watchId = "watch_id"
        case compactRevision = "compact_revision"
        case cancelReason = "cancel_reason"
    }
}

/// One line of the stream.
public struct WatchLine: Codable, Sendable, Equatable {
    public struct StreamError: Codable, Sendable, Equatable {
        public var grpcCode: Int?
        public var httpCode: Int?
        public var message: String?

        enum CodingKeys: String, CodingKey {
            case message
            case grpcCode = "grpc_code"
            case httpCode = "http_code"
        }
    }

    public var result: WatchResponse?
    public var error: StreamError?
}
