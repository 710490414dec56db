// Health checks as Consul defines them for service definitions, `check`/`checks` in config files
// and `PUT /v1/agent/check/register`: one probe (tcp, http, ttl or a script's args) with its timing.

import ConnectdCore

/// A check's state, as Consul names it.
public enum CheckHealth: String, Sendable, Hashable, CaseIterable {
    case passing, warning, critical

    /// The worse of two states (critical over warning over passing).
    public func worse(_ other: CheckHealth) -> CheckHealth {
        let order: [CheckHealth] = [.passing, .warning, .critical]
        return order.firstIndex(of: self)! >= order.firstIndex(of: other)! ? self : other
    }
}

public struct CheckDefinition: Sendable, Hashable {
    /// What the check does.
    public enum Probe: Sendable, Hashable {
        /// Connects to `host:port`.
        case tcp(String)
        case http(HTTPProbe)
        /// Critical unless updated (`PUT /v1/agent/check/pass/:id`, ...) within the TTL.
        case ttl(Duration)
        /// Runs argv: exit 0 passing, 1 warning, anything else critical.
        case script([String])

        public var kind: String {
            switch self {
            case .tcp: "tcp"
            case .http: "http"
            case .ttl: "ttl"
            case .script: "script"
            }
        }
    }

    public struct HTTPProbe: Sendable, Hashable {
        public var url: String
        public var method = "GET"
        public var headers: [String: [String]] = [:]
        public var tlsSkipVerify = false

        public init(url: String) { self.url = url }
    }

    public var id: String
    public var name: String
    /// The service the check belongs to; nil for a check of the node.
    public var serviceID: String?
    public var probe: Probe
    /// Between two runs (tcp, http, script); at least 1 s.
    public var interval: Duration = .seconds(10)
    /// A run that takes longer is critical (tcp, http, script).
    public var timeout: Duration = .seconds(10)
    /// A service whose check stays critical this long is deregistered; nil: never.
    public var deregisterCriticalServiceAfter: Duration?
    /// The state before the first run (Consul's default: critical).
    public var initialStatus: CheckHealth = .critical
    public var notes: String = ""

    public init(id: String, name: String, serviceID: String?, probe: Probe) {
        self.id = id
        self.name = name
        self.serviceID = serviceID
        self.probe = probe
    }

    /// Consul's shortest interval: shorter ones are raised to it.
    public static let minimumInterval: Duration = .seconds(1)
}

extension CheckDefinition {
    /// The definition as a PascalCase registration body (`PUT /v1/agent/check/register`'s keys);
    /// ``CheckDefinitionDecoder`` reads it back with `.lenient` matching.
    public var registrationJSON: JSONValue {
        var members: [(String, JSONValue)] = [("CheckID", .string(id)), ("Name", .string(name))]
        if let serviceID { members.append(("ServiceID", .string(serviceID))) }
        if !notes.isEmpty { members.append(("Notes", .string(notes))) }
        members.append(("Status", .string(initialStatus.rawValue)))
        switch probe {
        case .tcp(let address): members.append(("TCP", .string(address)))
        case .http(let http):
            members += [("HTTP", .string(http.url)), ("Method", .string(http.method)), ("TLSSkipVerify", .bool(http.tlsSkipVerify))]
            if !http.headers.isEmpty {
                members.append(("Header", .sortedObject(http.headers.mapValues { .array($0.map { .string($0) }) })))
            }
        case .ttl(let ttl): members.append(("TTL", .string(Self.format(ttl))))
        case .script(let args): members.append(("Args", .array(args.map { .string($0) })))
        }
        if case .ttl = probe {} else {
            members += [("Interval", .string(Self.format(interval))), ("Timeout", .string(Self.format(timeout)))]
        }
        if let after = deregisterCriticalServiceAfter {
            members.append(("DeregisterCriticalServiceAfter", .string(Self.format(after))))
        }
        return .object(members)
    }

    /// A Go duration's text (`10s`, `1m30s`).
    public static func format(_ duration: Duration) -> String { SupervisionSettings.format(duration) }
}
