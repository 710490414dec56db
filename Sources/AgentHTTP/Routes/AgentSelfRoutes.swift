// /v1/agent/self and /v1/agent/reload.

import AgentConfig
import ConnectdCore

enum AgentSelfRoutes {
    static func routes(_ backend: any AgentBackend) -> [Route] {
        [
            Route(.exact("/v1/agent/self"), methods: ["GET"]) { request throws(APIError) in
                let configuration = backend.configuration()
                let options = try QueryOptions(request, configuration: configuration)
                try ACLCheck.require(try ACLCheck.authorizer(options.token, backend: backend).agentRead(configuration.nodeName))
                return .json(selfDocument(backend, configuration, fleet: await backend.fleetSummary()), pretty: options.pretty)
            },
            // connectd extension: the fleet as this agent sees it (`connectd fleet status`).
            Route(.exact("/v1/agent/fleet"), methods: ["GET"]) { request throws(APIError) in
                let configuration = backend.configuration()
                let options = try QueryOptions(request, configuration: configuration)
                try ACLCheck.require(try ACLCheck.authorizer(options.token, backend: backend).agentRead(configuration.nodeName))
                let status = await backend.fleetStatus() ?? .object([("Mode", .string("single-host")), ("Node", .string(configuration.nodeName))])
                return .json(status, pretty: options.pretty)
            },
            // connectd extension: `connectd fleet remove-host NODE` (operator:write).
            Route(.prefix("/v1/agent/fleet/remove-host/"), methods: ["PUT"]) { request throws(APIError) in
                let configuration = backend.configuration()
                let options = try QueryOptions(request, configuration: configuration)
                try ACLCheck.require(try ACLCheck.authorizer(options.token, backend: backend).operatorWrite())
                let node = request.pathSuffix
                guard !node.isEmpty else { throw APIError.badRequestReason("missing node name: use /v1/agent/fleet/remove-host/<node>") }
                let deleted: Int?
                do {
                    deleted = try await backend.removeFleetHost(node)
                } catch {
                    throw APIError.internalError("\(error)")
                }
                guard let deleted else { throw APIError.badRequestReason("this agent is not in a fleet (no fleet block)") }
                return .json(.object([("Node", .string(node)), ("DeletedCatalogEntries", .int(Int64(deleted)))]), pretty: options.pretty)
            },
            Route(.exact("/v1/agent/reload"), methods: ["PUT"]) { request throws(APIError) in
                let configuration = backend.configuration()
                try ACLCheck.require(try ACLCheck.authorizer(ACLCheck.token(request, configuration), backend: backend)
                    .agentWrite(configuration.nodeName))
                do {
                    try await backend.reload()
                } catch {
                    throw APIError.internalError("Failed reloading config:\n\(error)")
                }
                return .empty
            },
        ]
    }

    static func selfDocument(_ backend: any AgentBackend, _ c: AgentConfiguration, fleet: String?) -> JSONValue {
        let config: JSONValue = .object([
            ("Datacenter", .string(c.datacenter)),
            ("NodeName", .string(c.nodeName)),
            ("NodeID", .string(backend.nodeID)),
            ("Revision", .string("connectd-\(backend.build.version)")),
            ("Server", .bool(false)),
            ("Version", .string(backend.build.consulAPIVersion)),
        ])
        let debug: JSONValue = .object([
            ("BindAddr", .string(c.bindAddr)),
            ("ClientAddrs", .array([.string(c.clientAddr)])),
            ("ConnectEnabled", .bool(c.connectEnabled)),
            ("ConnectProxyAllowManagedAPIRegistration", .bool(c.allowManagedAPIRegistration)),
            ("ConnectProxyAllowManagedRoot", .bool(c.allowManagedRoot)),
            ("ConnectProxyBindMaxPort", .int(Int64(c.proxyPortRange?.upperBound ?? 0))),
            ("ConnectProxyBindMinPort", .int(Int64(c.proxyPortRange?.lowerBound ?? 0))),
            ("ConnectProxyDefaultConfig", c.proxyDefaults.config),
            ("ConnectProxyDefaultDaemonCommand", c.proxyDefaults.daemonCommand.json),
            ("ConnectProxyDefaultExecMode", .string(c.proxyDefaults.execMode?.rawValue ?? "")),
            ("ConnectProxyDefaultScriptCommand", c.proxyDefaults.scriptCommand.json),
            ("DataDir", .string(c.dataDir ?? "")),
            ("Datacenter", .string(c.datacenter)),
            ("DevMode", .bool(c.dev)),
            ("HTTPMaxRequestBytes", .int(Int64(c.httpMaxRequestBytes))),
            ("HTTPPort", .int(Int64(c.httpPort))),
            ("LogLevel", .string(c.logLevel.consulName)),
            ("NodeName", .string(c.nodeName)),
        ])
        let state = backend.state.snapshot
        let member: JSONValue = .object([
            ("Name", .string(c.nodeName)),
            ("Addr", .string(c.bindAddr)),
            ("Port", .int(0)),
            ("Tags", .sortedObject(["dc": .string(c.datacenter), "role": .string("node"), "id": .string(backend.nodeID)])),
            ("Status", .int(1)),
        ])
        let stats: JSONValue = .object([
            ("agent", .sortedObject([
                "services": .string(String(state.services.count + state.proxies.count)),
                "checks": .string("0"),
            ])),
            ("connectd", .sortedObject([
                "version": .string(backend.build.version),
                "consul_api_version": .string(backend.build.consulAPIVersion),
                "state_index": .string(String(state.index)),
                "managed_proxies": .string(String(state.proxies.count)),
                "fleet": .string(fleet ?? "off (single host)"),
            ])),
        ])
        return .object([
            ("Config", config), ("DebugConfig", debug), ("Coord", .null),
            ("Member", member), ("Stats", stats), ("Meta", .object([])),
        ])
    }
}
