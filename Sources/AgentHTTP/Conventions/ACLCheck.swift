// Where every endpoint's ACL check goes through: resolve the request's token, then require a permission.

import AgentConfig
import AgentState
import AgentStore
import Authorization

enum ACLCheck {
    /// The request's token (`?token=`, `X-Consul-Token`, `Authorization: Bearer`), else `acl.tokens.default`.
    static func token(_ request: APIRequest, _ configuration: AgentConfiguration) -> String {
        TokenExtraction.token(from: request) ?? configuration.acl.defaultToken ?? ""
    }

    /// Resolves `token`: 403 `ACL not found` for an unknown one.
    static func authorizer(_ token: String, backend: any AgentBackend, snapshot: StateSnapshot? = nil,
                           configuration: AgentConfiguration? = nil) throws(APIError) -> Authorizer {
        let (acl, nodeName) = configuration.map { ($0.acl, $0.nodeName) } ?? backend.configuration { ($0.acl, $0.nodeName) }
        // Without a token there is no proxy to look up (the hot path of authorize with ACLs off).
        let proxies = token.isEmpty ? [:] : snapshot?.proxies ?? backend.state.read(\.proxies)
        do throws(ACLError) {
            return try TokenResolver.resolve(token, settings: acl, proxies: proxies, nodeName: nodeName)
        } catch {
            throw APIError(status: 403, message: "ACL not found")
        }
    }

    /// 403 `Permission denied` unless `allowed`.
    static func require(_ allowed: Bool) throws(APIError) {
        guard allowed else { throw APIError.permissionDenied }
    }

    /// For a thing that does not exist: 404 with `message` for callers who see everything, else
    /// 403, so a caller without rights cannot learn what exists.
    static func notFound(_ message: String, for authorizer: Authorizer) -> APIError {
        authorizer.seesEverything ? APIError.notFound(message) : APIError.permissionDenied
    }
}
