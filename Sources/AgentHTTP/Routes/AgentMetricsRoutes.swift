// GET /v1/agent/metrics: Consul's JSON summary of the last 10 s interval, or the Prometheus text
// exposition with `?format=prometheus` (agent:read either way).

import Telemetry

enum AgentMetricsRoutes {
    static func routes(_ backend: any AgentBackend) -> [Route] {
        [
            Route(.exact("/v1/agent/metrics"), methods: ["GET"]) { request throws(APIError) in
                let configuration = backend.configuration()
                let options = try QueryOptions(request, configuration: configuration)
                try ACLCheck.require(try ACLCheck.authorizer(options.token, backend: backend).agentRead(configuration.nodeName))
                if request.queryValue("format") == "prometheus" {
                    return APIResponse(status: 200, headers: [("Content-Type", MetricsHub.prometheusContentType)],
                                       body: await backend.metrics.prometheusText())
                }
                return .json(await backend.metrics.consulSummary(), pretty: options.pretty)
            },
        ]
    }
}
