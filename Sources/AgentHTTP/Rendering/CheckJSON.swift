// Consul 1.5.3's HealthCheck shape for service and node checks, and the alias check a managed
// proxy carries for its target (passing only while every check of the target passes).

import AgentConfig
import AgentState
import ConnectdCore

enum CheckJSON {
    /// A defined check with its current result (its initial status before the first run).
    static func health(_ check: CheckDefinition, _ result: CheckResult?, service: ServiceDefinition?, node: String,
                       index: UInt64) -> JSONValue {
        let result = result ?? CheckResult(status: check.initialStatus, output: "")
        return .object([
            ("Node", .string(node)),
            ("CheckID", .string(check.id)),
            ("Name", .string(check.name)),
            ("Status", .string(result.status.rawValue)),
            ("Notes", .string(check.notes)),
            ("Output", .string(result.output)),
            ("ServiceID", .string(check.serviceID ?? "")),
            ("ServiceName", .string(service?.name ?? "")),
            ("ServiceTags", .array((service?.tags ?? []).map { .string($0) })),
            ("Definition", definition(check)),
            ("CreateIndex", .int(1)),
            ("ModifyIndex", .int(Int64(max(index, 1)))),
        ])
    }

    /// Consul's `HealthCheckDefinition`: only what the check sets.
    static func definition(_ check: CheckDefinition) -> JSONValue {
        var members: [(String, JSONValue)] = []
        switch check.probe {
        case .http(let http):
            members.append(("HTTP", .string(http.url)))
            if http.tlsSkipVerify { members.append(("TLSSkipVerify", .bool(true))) }
            if !http.headers.isEmpty { members.append(("Header", .sortedObject(http.headers.mapValues { .array($0.map { .string($0) }) }))) }
            members.append(("Method", .string(http.method)))
        case .tcp(let address): members.append(("TCP", .string(address)))
        case .ttl, .script: break
        }
        if CheckJSON.runs(check) {
            members += [("Interval", .string(CheckDefinition.format(check.interval))), ("Timeout", .string(CheckDefinition.format(check.timeout)))]
        }
        if let after = check.deregisterCriticalServiceAfter {
            members.append(("DeregisterCriticalServiceAfter", .string(CheckDefinition.format(after))))
        }
        return .object(members)
    }

    static func runs(_ check: CheckDefinition) -> Bool {
        if case .ttl = check.probe { false } else { true }
    }

    /// The alias check of managed proxy `proxyServiceID` for its target.
    static func alias(proxyServiceID: String, proxyServiceName: String, target: ServiceDefinition, status: CheckHealth, output: String,
                      node: String, index: UInt64) -> JSONValue {
        .object([
            ("Node", .string(node)),
            ("CheckID", .string("service:\(proxyServiceID):alias")),
            ("Name", .string("Connect Sidecar Aliasing \(target.id)")),
            ("Status", .string(status.rawValue)),
            ("Notes", .string("")),
            ("Output", .string(output)),
            ("ServiceID", .string(proxyServiceID)),
            ("ServiceName", .string(proxyServiceName)),
            ("ServiceTags", .array([])),
            ("Definition", .object([])),
            ("CreateIndex", .int(1)),
            ("ModifyIndex", .int(Int64(max(index, 1)))),
        ])
    }
}
