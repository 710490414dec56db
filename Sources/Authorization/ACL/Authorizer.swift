// Authorization: ACL tokens and rules, intentions, and the authorize decision, as policy over
// values: the intention table is part of AgentState's snapshot, and every decision here is a
// function of the values it is given. It must not touch HTTP, processes or the store.

import AgentConfig

/// What a resolved token may do.
public struct Authorizer: Sendable {
    public enum Principal: Sendable {
        /// ACLs are disabled: everything is allowed.
        case unrestricted
        /// The master token.
        case management
        /// A token with rules (a static token, the anonymous token with none).
        case rules(ACLRules)
        /// The agent token: `agent:write` on this node, nothing else unless it is also a static token.
        case agent(node: String)
        /// A managed proxy's own token: only what that proxy needs.
        case proxy(ProxyGrant)
    }

    public var principal: Principal
    /// `acl.default_policy` is allow: rules-less requests (and unmatched rules) are allowed.
    public var defaultAllow: Bool

    public init(principal: Principal, defaultAllow: Bool) {
        self.principal = principal
        self.defaultAllow = defaultAllow
    }

    /// A managed proxy's token with ACLs disabled: allowed everything, except that it gets only
    /// its own target's leaf (Consul 1.5 refused other leaves even then).
    static func proxyIdentityOnly(_ grant: ProxyGrant) -> Authorizer {
        Authorizer(principal: .proxy(grant), defaultAllow: true, enforced: false)
    }

    private init(principal: Principal, defaultAllow: Bool, enforced: Bool) {
        self.principal = principal
        self.defaultAllow = defaultAllow
        self.enforced = enforced
    }

    /// False only for ``proxyIdentityOnly(_:)``.
    private var enforced = true

    /// The principal the rule checks use: a proxy token with ACLs disabled checks as unrestricted.
    private var effective: Principal { enforced ? principal : .unrestricted }

    public static let unrestricted = Authorizer(principal: .unrestricted, defaultAllow: true)

    /// True for ACLs disabled or the master token: nothing is hidden from this caller.
    public var seesEverything: Bool {
        switch effective {
        case .unrestricted, .management: true
        default: false
        }
    }

    public func serviceRead(_ name: String) -> Bool { service(name, atLeast: .read) }
    public func serviceWrite(_ name: String) -> Bool { service(name, atLeast: .write) }

    private func service(_ name: String, atLeast level: ACLPolicy) -> Bool {
        switch effective {
        case .unrestricted, .management: return true
        case .rules(let rules): return rules.serviceRule(name).map { $0.policy >= level } ?? defaultAllow
        // A proxy reads no service records: what it may discover is `discoveryRead(_:)`.
        case .agent, .proxy: return false
        }
    }

    /// The health and catalog entries of `name`'s Connect-capable instances: `service:read`, or
    /// the token of a proxy whose target or upstream `name` is.
    public func discoveryRead(_ name: String) -> Bool {
        if case .proxy(let grant) = effective { return grant.upstreams.contains(name) || name == grant.targetServiceName }
        return serviceRead(name)
    }

    /// Listing services or intentions (`/v1/agent/services`, `/v1/catalog/services`, `/v1/connect/intentions`),
    /// filtered by what the token may read:
    /// refused outright to a managed proxy's token, which has nothing to list.
    public var mayList: Bool {
        if case .proxy = effective { return false }
        return true
    }

    public func intentionRead(_ destination: String) -> Bool { intention(destination, atLeast: .read) }
    public func intentionWrite(_ destination: String) -> Bool { intention(destination, atLeast: .write) }

    private func intention(_ destination: String, atLeast level: ACLPolicy) -> Bool {
        switch effective {
        case .unrestricted, .management: return true
        case .rules(let rules):
            guard let rule = rules.serviceRule(destination) else { return defaultAllow }
            if let intentions = rule.intentions { return intentions >= level }
            // Consul: reading intentions comes with service read or write; writing needs `intentions = "write"`.
            return level == .read && rule.policy >= .read
        case .agent: return false
        // A proxy reads the intentions of its own target (what decides its authorize answers):
        // its authorize cache parks on them to learn of a change at once.
        case .proxy(let grant): return level == .read && destination == grant.targetServiceName
        }
    }

    public func agentRead(_ node: String) -> Bool { agent(node, atLeast: .read) }
    public func agentWrite(_ node: String) -> Bool { agent(node, atLeast: .write) }

    private func agent(_ node: String, atLeast level: ACLPolicy) -> Bool {
        switch effective {
        case .unrestricted, .management: return true
        case .rules(let rules): return rules.agentPolicy(node).map { $0 >= level } ?? defaultAllow
        case .agent(let own): return node == own
        case .proxy: return false
        }
    }

    public func operatorRead() -> Bool { operatorAccess(atLeast: .read) }
    public func operatorWrite() -> Bool { operatorAccess(atLeast: .write) }

    private func operatorAccess(atLeast level: ACLPolicy) -> Bool {
        switch effective {
        case .unrestricted, .management: return true
        case .rules(let rules): return rules.operatorPolicy.map { $0 >= level } ?? defaultAllow
        case .agent, .proxy: return false
        }
    }

    // MARK: - Managed-proxy endpoints

    /// Reading a managed proxy's configuration or agent-service record: its own token, or
    /// `service:write` on its target.
    public func proxyRead(_ proxy: some ProxyIdentity) -> Bool {
        if case .proxy(let grant) = effective { return grant.proxyServiceID == proxy.proxyServiceID }
        return serviceWrite(proxy.targetServiceName)
    }

    /// A leaf certificate for `service`: `service:write`, or the token of a proxy for it.
    public func leaf(_ service: String) -> Bool {
        if case .proxy(let grant) = principal { return grant.targetServiceName == service }
        return serviceWrite(service)
    }

    /// `authorize` for `target`: `service:write`, or the token of a proxy for it.
    public func authorize(target: String) -> Bool {
        if case .proxy(let grant) = effective { return grant.targetServiceName == target }
        return serviceWrite(target)
    }

    /// True when this is the token of `proxy` (which adds the telemetry block to its config).
    public func isToken(of proxy: some ProxyIdentity) -> Bool {
        if case .proxy(let grant) = principal { return grant.proxyServiceID == proxy.proxyServiceID }
        return false
    }
}

/// What a managed proxy's token grants: its own records, its target's leaf and authorize, and
/// reading its upstreams.
public struct ProxyGrant: Sendable, Equatable {
    public var proxyServiceID: String
    public var targetServiceName: String
    public var upstreams: Set<String>

    public init(_ proxy: some ProxyIdentity) {
        proxyServiceID = proxy.proxyServiceID
        targetServiceName = proxy.targetServiceName
        upstreams = proxy.upstreamServiceNames
    }
}

/// What ACL checks need to know of a managed proxy (AgentState's `ManagedProxy` conforms).
public protocol ProxyIdentity: Sendable {
    var proxyServiceID: String { get }
    var targetServiceName: String { get }
    /// The proxy's secret token.
    var token: String { get }
    /// The services its upstreams name (they may read those services' discovery data).
    var upstreamServiceNames: Set<String> { get }
}
