// Turns a request's token into an Authorizer, from the ACL settings and the managed proxies.

import AgentConfig

public enum ACLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A token that is not known: Consul's 403 `ACL not found`.
    case notFound
    public var description: String { "ACL not found" }
}

public enum TokenResolver {
    /// Resolves `token` (already defaulted to `acl.tokens.default` when the request had none).
    ///
    /// With ACLs disabled every token is unrestricted, except that a managed proxy's token stays
    /// that proxy's identity for the leaf check (as Consul 1.5 did).
    public static func resolve<Proxy: ProxyIdentity>(_ token: String, settings: ACLSettings, proxies: [String: Proxy],
                               nodeName: String) throws(ACLError) -> Authorizer {
        let proxy = token.isEmpty ? nil : proxies.values.first { $0.token == token }
        guard settings.enabled else {
            if let proxy { return .proxyIdentityOnly(ProxyGrant(proxy)) }
            return .unrestricted
        }
        if let master = settings.masterToken, !token.isEmpty, token == master {
            return Authorizer(principal: .management, defaultAllow: settings.defaultAllow)
        }
        if let proxy { return Authorizer(principal: .proxy(ProxyGrant(proxy)), defaultAllow: settings.defaultAllow) }
        if let defined = settings.staticTokens.first(where: { $0.secret == token }) {
            return Authorizer(principal: .rules(defined.rules), defaultAllow: settings.defaultAllow)
        }
        if let agent = settings.agentToken, token == agent {
            return Authorizer(principal: .agent(node: nodeName), defaultAllow: settings.defaultAllow)
        }
        // The anonymous token: no rules of its own, so the default policy decides.
        if token.isEmpty { return Authorizer(principal: .rules(ACLRules()), defaultAllow: settings.defaultAllow) }
        throw .notFound
    }
}

