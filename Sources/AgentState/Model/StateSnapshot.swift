// The agent's one versioned snapshot: services, managed proxies, intentions and the CA, as one
// value at one index. Readers never see a half-applied change.

import AgentConfig
import Authorization
import CertificateAuthority

public struct StateSnapshot: Sendable, Equatable {
    /// The store revision + 1 of the last change to anything here; monotonic, never 0.
    public var index: UInt64
    /// By service ID. Managed proxy services are not here; see `proxies`.
    public var services: [String: LocalService]
    /// By proxy service ID (`web-proxy`).
    public var proxies: [String: ManagedProxy]
    /// Every intention (API and config files), with their own index.
    public var intentions: IntentionTable
    /// The certificate authority: roots with their keys, configuration, roots index.
    public var ca: CAState
    /// Checks registered through `PUT /v1/agent/check/register`, by check ID (persisted).
    public var checks: [String: CheckDefinition] = [:]
    /// Fleet mode: every host's services and proxies as etcd holds them; nil on a single host.
    public var fleetCatalog: FleetCatalog?

    public init(index: UInt64 = 1, services: [String: LocalService] = [:], proxies: [String: ManagedProxy] = [:],
                intentions: IntentionTable = IntentionTable(), ca: CAState) {
        self.index = index
        self.services = services
        self.proxies = proxies
        self.intentions = intentions
        self.ca = ca
    }

    /// The managed proxy of the service with ID `targetID`, if any.
    public func proxy(forTarget targetID: String) -> ManagedProxy? {
        services[targetID].flatMap { proxies[$0.definition.proxyServiceID] }.flatMap { $0.targetServiceID == targetID ? $0 : nil }
    }

    /// Equal content, ignoring the index.
    func sameContent(as other: StateSnapshot) -> Bool {
        services == other.services && proxies == other.proxies && intentions.intentions == other.intentions.intentions
            && ca == other.ca && checks == other.checks
    }
}
