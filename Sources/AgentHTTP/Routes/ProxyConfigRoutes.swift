// GET /v1/agent/connect/proxy/:id — a managed proxy's configuration, hash-blocking.

import AgentState
import AgentStore
import Authorization
import ConnectdCore

enum ProxyConfigRoutes {
    static func routes(_ backend: any AgentBackend, cache: RenderCache) -> [Route] {
        [
            HashBlocking.route(.prefix("/v1/agent/connect/proxy/"), backend: backend, cache: cache) { request, snapshot, authorizer throws(APIError) in
                try body(id: request.pathSuffix, snapshot, authorizer, backend)
            },
        ]
    }

    static func body(id: String, _ snapshot: StateSnapshot, _ authorizer: Authorizer,
                     _ backend: any AgentBackend) throws(APIError) -> (JSONValue, String) {
        guard let proxy = snapshot.proxies[id] else {
            throw ACLCheck.notFound("unknown proxy service ID: \(id)", for: authorizer)
        }
        try ACLCheck.require(authorizer.proxyRead(proxy))
        guard let target = snapshot.services[proxy.targetServiceID] else {
            throw APIError.notFound("unknown target service ID: \(proxy.targetServiceID)")
        }
        return ProxyConfigJSON.withContentHash(ProxyConfigJSON.body(
            proxy, target: target.definition, configuration: backend.configuration(),
            builtinCommand: backend.builtinProxyCommand, withTelemetry: authorizer.isToken(of: proxy)))
    }
}
