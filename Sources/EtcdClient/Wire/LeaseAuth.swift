// Leases (`/v3/lease/grant`, `/keepalive`, `/revoke`) and authentication (`/v3/auth/authenticate`)
// as the gateway spells them; the lease fields keep etcd's upper-case proto names (`TTL`, `ID`).

public struct LeaseGrantRequest: Codable, Sendable, Equatable {
    public var ttl: WireInt
    /// 0 or nil: etcd picks the ID.
    public var id: WireInt?

    enum CodingKeys: String, CodingKey {
        case ttl = "TTL"
        case id = "ID"
    }

    public init(ttlSeconds: Int64, id: Int64? = nil) {
        ttl = WireInt(ttlSeconds)
        self.id = id.map { WireInt($0) }
    }
}

public struct LeaseGrantResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
    public var id: WireInt?
    public var ttl: WireInt?
    public var error: String?

    enum CodingKeys: String, CodingKey {
        case header, error
        case id = "ID"
        case ttl = "TTL"
    }
}

public struct LeaseKeepAliveRequest: Codable, Sendable, Equatable {
    public var id: WireInt

    enum CodingKeys: String, CodingKey { case id = "ID" }

    public init(id: Int64) { self.id = WireInt(id) }
}

/// The keepalive endpoint streams; its one answer comes wrapped in `result`.
public struct LeaseKeepAliveResponse: Codable, Sendable, Equatable {
    public struct Result: Codable, Sendable, Equatable {
        public var header: ResponseHeader?
        public var id: WireInt?
        /// Missing when the lease is gone (expired or revoked).
        public var ttl: WireInt?

        enum CodingKeys: String, CodingKey {
            case header
            case id = "ID"
            case ttl = "TTL"
        }
    }

    public var result: Result?

    /// The remaining TTL in seconds, nil when the lease no longer exists.
    public var remainingTTL: Int64? { result?.ttl.map(\.value).flatMap { $0 > 0 ? $0 : nil } }
}

public struct LeaseRevokeRequest: Codable, Sendable, Equatable {
    public var id: WireInt

    enum CodingKeys: String, CodingKey { case id = "ID" }

    public init(id: Int64) { self.id = WireInt(id) }
}

public struct LeaseRevokeResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
}

public struct AuthenticateRequest: Codable, Sendable, Equatable {
    public var name: String
    public var password: String
}

public struct AuthenticateResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
    public var token: String?
}

/// What the gateway answers instead of a message: an HTTP status and this body, with the gRPC
/// status code in `code`.
public struct GatewayErrorBody: Codable, Sendable, Equatable {
    public var error: String?
    public var message: String?
    public var code: Int?
}
