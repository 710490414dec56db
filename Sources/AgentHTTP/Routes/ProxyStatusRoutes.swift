// GET /v1/agent/proxies — connectd extension: the supervisor's view of every managed proxy.

import ConnectdCore
import Foundation
import AgentState

enum ProxyStatusRoutes {
    static func routes(_ backend: any AgentBackend) -> [Route] {
        [
            Route(.exact("/v1/agent/proxies"), methods: ["GET"]) { request throws(APIError) in
                let options = try QueryOptions(request, backend: backend)
                try ACLCheck.require(try ACLCheck.authorizer(options.token, backend: backend).agentRead(backend.configuration().nodeName))
                return .json(.array(backend.state.proxyStatus.all().map(json)), pretty: options.pretty, index: backend.state.snapshot.index)
            },
        ]
    }

    static func json(_ status: ProxyStatus) -> JSONValue {
        var lastExit: JSONValue = .null
        if let exit = status.lastExit {
            var members: [(String, JSONValue)] = []
            switch exit {
            case .exited(let code): members.append(("Code", .int(Int64(code))))
            case .signaled(let signal): members.append(("Signal", .int(Int64(signal))))
            case .unknown: members.append(("Unknown", .bool(true)))
            }
            members.append(("Time", time(status.lastExitAt)))
            lastExit = .object(members)
        }
        var adopted = false
        if case .running(_, _, let wasAdopted) = status.state { adopted = wasAdopted }
        return .object([
            ("ID", .string(status.proxyID)),
            ("TargetServiceID", .string(status.targetServiceID)),
            ("State", .string(status.state.name)),
            ("Pid", status.pid.map { .int(Int64($0)) } ?? .null),
            ("Adopted", .bool(adopted)),
            ("StartedAt", time(status.startedAt)),
            ("RestartCount", .int(Int64(status.restartCount))),
            ("LastExit", lastExit),
            ("NextRetryAt", time(status.nextRetryAt)),
            ("Reason", status.reason.map { .string($0) } ?? .null),
        ])
    }

    static func time(_ date: Date?) -> JSONValue {
        guard let date else { return .null }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return .string(formatter.string(from: date))
    }
}
