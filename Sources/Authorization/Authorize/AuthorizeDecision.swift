// `POST /v1/agent/connect/authorize` as Consul 1.5 decides it: the first intention for the
// target whose source matches the client wins; otherwise the ACL default.

import AgentConfig
import ConnectdCore

public struct AuthorizeResult: Sendable, Equatable {
    public var authorized: Bool
    public var reason: String
}

public enum AuthorizeDecision {
    public enum InputError: Error, Sendable, Equatable {
        case missingTarget
        case notConnectIdentifier
        case notServiceIdentifier

        /// The `Bad request: ...` reason, as Consul words it.
        public var reason: String {
            switch self {
            case .missingTarget: "Target service must be specified"
            case .notConnectIdentifier: "ClientCertURI not a valid Connect identifier"
            case .notServiceIdentifier: "ClientCertURI not a valid Service identifier"
            }
        }
    }

    /// The client's service identity from `ClientCertURI`, with Consul's input checks in order.
    public static func validate(target: String, clientCertURI: String) throws(InputError) -> (namespace: String, service: String) {
        guard !target.isEmpty else { throw .missingTarget }
        let identity: SpiffeID
        do {
            identity = try SpiffeID.parse(clientCertURI)
        } catch {
            throw .notConnectIdentifier
        }
        guard case .service(_, let namespace, _, let service) = identity else { throw .notServiceIdentifier }
        return (namespace, service)
    }

    /// The decision for a client `namespace`/`service` connecting to `target`. The trust domain
    /// is not compared (Consul ≥ 1.4: the TLS chain is what proves it).
    public static func decide(target: String, namespace: String, service: String, intentions: IntentionTable,
                              acl: ACLSettings) -> AuthorizeResult {
        if let match = intentions.decide(destination: target, sourceNamespace: namespace, sourceService: service) {
            return AuthorizeResult(authorized: match.allows, reason: "Matched intention: \(match.summary)")
        }
        guard acl.enabled else { return AuthorizeResult(authorized: true, reason: "ACLs disabled, access is allowed by default") }
        return AuthorizeResult(authorized: acl.defaultAllow, reason: "Default behavior configured by ACLs")
    }
}
