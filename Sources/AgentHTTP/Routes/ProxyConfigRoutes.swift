// GET /v1/agent/connect/proxy/:id — a managed proxy's configuration, hash-blocking.

import AgentState
import Authorization

enum ProxyConfigRoutes {
    static func routes(_ backend: any AgentBackend, cache: RenderCache) -> [Route] {
        [
            Route(.prefix("/v1/agent/connect/proxy/"), methods: ["GET"]) { request throws(APIError) in
                let id = request.pathSuffix
                return try await HashBlocking.respond(request, backend: backend, cache: cache) { snapshot, authorizer throws(APIError) in
                    guard let proxy = snapshot.proxies[id] else {
                        throw ACLCheck.notFound("unknown proxy service ID: \(id)", for: authorizer)
                    }
                    try ACLCheck.require(authorizer.proxyRead(proxy))
                    guard let target = snapshot.services[proxy.targetServiceID] else {
                        throw APIError.notFound("unknown target service ID: \(proxy.targetServiceID)")
                    }
                    let isProxyToken = authorizer.isToken(of: proxy)
                    return ProxyConfigJSON.withContentHash(ProxyConfigJSON.body(
                        proxy, target: target.definition, configuration: backend.configuration(),
                        builtinCommand: backend.builtinProxyCommand, withTelemetry: isProxyToken))
                }
            },
        ]
    }
}
