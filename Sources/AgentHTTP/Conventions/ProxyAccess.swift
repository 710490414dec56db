// Who may read a managed proxy's configuration. The ACL issue fills in the token rules here.

import AgentState

enum ProxyAccess {
    /// Checks `token` for reading `proxy`'s configuration; returns true when it is the proxy's
    /// own token (which also adds the telemetry block).
    ///
    /// - Important: until ACLs exist every token may read, as Consul with ACLs disabled. The ACL
    ///   issue adds the rule here: the proxy's own token, or `service:write` on the target.
    static func check(token: String, proxy: ManagedProxy) throws(APIError) -> Bool {
        token == proxy.token
    }

    /// Checks `token` for the leaf certificate of `service`: a managed proxy's token only gets
    /// its own target service's leaf (Consul 1.5 refuses others even with ACLs disabled).
    static func checkLeaf(token: String, service: String, snapshot: StateSnapshot) throws(APIError) {
        guard !token.isEmpty, let proxy = snapshot.proxies.values.first(where: { $0.token == token }) else { return }
        guard proxy.targetServiceName == service else { throw APIError.permissionDenied }
    }
}
