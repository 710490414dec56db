// `/v3/maintenance/status` as the gateway spells it in 3.4: the header in snake_case, the rest
// in camelCase (`dbSize`, `raftIndex`), every integer a string.

public struct StatusRequest: Codable, Sendable, Equatable {
    public init() {}
}

public struct StatusResponse: Codable, Sendable, Equatable {
    public struct Header: Codable, Sendable, Equatable {
        public var memberId: WireInt?
        public var revision: WireInt?
        public var raftTerm: WireInt?

        enum CodingKeys: String, CodingKey {
            case memberId = "member_id"
            case revision
            case raftTerm = "raft_term"
        }
    }

    public var header: Header?
    public var version: String?
    public var leader: WireInt?
    public var raftIndex: WireInt?
    public var errors: [String]?

    /// The member that answered leads the cluster.
    public var isLeader: Bool { leader != nil && leader?.value != 0 && leader == header?.memberId }
    /// The member knows a leader (it has quorum).
    public var hasLeader: Bool { (leader?.value ?? 0) != 0 }
}
