// The resolved, validated configuration the agent runs with.

import ConnectdCore

/// Log levels in Consul's spelling; parsing is case-insensitive and accepts `error` for `err`.
public enum LogLevel: String, Sendable, CaseIterable, Comparable {
    case trace, debug, info, warn, err

    public init?(parsing text: String) {
        switch text.lowercased() {
        case "trace": self = .trace
        case "debug": self = .debug
        case "info": self = .info
        case "warn", "warning": self = .warn
        case "err", "error": self = .err
        default: return nil
        }
    }

    /// Consul's upper-case spelling (`DEBUG`), as passed to `-log-level`.
    public var consulName: String { rawValue.uppercased() }

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// `connect.proxy_defaults`: what a managed proxy gets when its definition leaves a field empty.
public struct ProxyDefaults: Sendable, Equatable {
    public var execMode: ExecMode?
    public var daemonCommand: [String] = []
    public var scriptCommand: [String] = []
    public var config: JSONValue = .object([])
    /// Supervision defaults for every proxy (`restart`, `stop_signal`, `stop_grace`, `env_passthrough`, `logs`).
    public var supervision = SupervisionSettings()

    public init() {}
}

/// Everything the agent runs with, after merging every source and applying defaults.
public struct AgentConfiguration: Sendable, Equatable {
    public var datacenter = "dc1"
    public var nodeName = "localhost"
    /// nil only in `-dev` before the agent creates its temporary directory.
    public var dataDir: String?
    public var clientAddr = "127.0.0.1"
    public var bindAddr = "0.0.0.0"
    public var httpPort = 8500
    /// Inclusive range for automatic `bind_port` allocation; nil when both ends are 0.
    public var proxyPortRange: ClosedRange<Int>? = 20000...20255
    public var logLevel: LogLevel = .info
    public var logJSON = false
    public var connectEnabled = true
    public var allowManagedRoot = false
    public var allowManagedAPIRegistration = false
    public var proxyDefaults = ProxyDefaults()
    public var httpMaxRequestBytes = 1 << 20
    /// `limits.http_*` connection bounds (the body limit is ``httpMaxRequestBytes``).
    public var httpConnections = HTTPLimits()
    /// `telemetry`: the metric filter and Consul's Prometheus settings.
    public var telemetry = TelemetrySettings()
    /// `connect.ca_config`: applied when the CA is created and whenever these values change.
    public var caSettings = CASettings()
    public var acl = ACLSettings()
    /// `advertise_addr` as configured; nil: other hosts get ``advertisedAddress``'s default.
    public var advertiseAddr: String?
    /// Fleet mode's settings; nil: a mesh of one host.
    public var fleet: FleetSettings?
    /// Declarative intentions from config files.
    public var intentions: [IntentionDefinition] = []
    public var dev = false
    /// Config-file services, in load order.
    public var services: [ServiceDefinition] = []
    /// Top-level checks from config files (of the node, or of a service by `service_id`).
    public var checks: [CheckDefinition] = []
    /// `enable_script_checks`: `args` checks registered through the API may run (and those of files).
    public var enableScriptChecks = false
    /// `enable_local_script_checks`: `args` checks from config files may run.
    public var enableLocalScriptChecks = false

    public init() {}

    /// JSON responses are always pretty in `-dev`, as in Consul.
    public var alwaysPretty: Bool { dev }
}

extension AgentConfiguration {
    /// Merges `fragments` in order over the defaults (and `-dev` defaults), then validates.
    ///
    /// - Parameters:
    ///   - requireDataDir: the agent needs `data_dir` outside `-dev`; `connectd validate` does not.
    ///   - hostName: default `node_name`.
    /// - Throws: ``ConfigErrors`` listing every problem found.
    public static func build(
        fragments: [ConfigFragment], dev: Bool, requireDataDir: Bool, hostName: String
    ) throws(ConfigErrors) -> AgentConfiguration {
        let merged = fragments.reduce(ConfigFragment()) { $0.merged(with: $1) }
        var problems: [ConfigProblem] = []
        func problem(_ keyPath: String, _ message: String) {
            problems.append(ConfigProblem(file: nil, keyPath: keyPath, message: message))
        }

        var config = AgentConfiguration()
        config.dev = dev
        if dev {
            config.logLevel = .debug
            config.bindAddr = "127.0.0.1"
        }
        // Values were checked per source (ConfigFragment.checkValues); apply the valid ones.
        config.nodeName = merged.nodeName.flatMap { $0.isEmpty ? nil : $0 } ?? hostName
        if let datacenter = merged.datacenter, !datacenter.isEmpty { config.datacenter = datacenter.lowercased() }
        if let dataDir = merged.dataDir, !dataDir.isEmpty { config.dataDir = dataDir }
        if requireDataDir && !dev && config.dataDir == nil {
            problem("data_dir", "data_dir must be set (in a config file or with -data-dir); -dev uses a temporary directory")
        }
        if let address = merged.clientAddr, IPAddressText.isValid(address) { config.clientAddr = address }
        if let address = merged.bindAddr, IPAddressText.isValid(address) { config.bindAddr = address }
        if let level = merged.logLevel.flatMap(LogLevel.init(parsing:)) { config.logLevel = level }
        config.logJSON = merged.logJSON ?? false
        if let port = merged.httpPort { config.httpPort = port }
        let minPort = merged.proxyMinPort ?? 20000
        let maxPort = merged.proxyMaxPort ?? 20255
        if minPort == 0 && maxPort == 0 {
            config.proxyPortRange = nil
        } else if minPort == 0 || maxPort == 0 || minPort >= maxPort {
            problems.append(ConfigProblem(file: merged.proxyPortsSource, keyPath: "ports",
                message: "proxy_min_port must be less than proxy_max_port. To disable, set both to zero."))
        } else {
            config.proxyPortRange = minPort...maxPort
        }
        config.connectEnabled = merged.connectEnabled ?? true
        config.allowManagedRoot = merged.allowManagedRoot ?? false
        config.allowManagedAPIRegistration = merged.allowManagedAPIRegistration ?? false
        config.proxyDefaults.execMode = merged.proxyDefaultExecMode
        config.proxyDefaults.daemonCommand = merged.proxyDefaultDaemonCommand ?? []
        config.proxyDefaults.scriptCommand = merged.proxyDefaultScriptCommand ?? []
        config.proxyDefaults.config = merged.proxyDefaultConfig ?? .object([])
        config.proxyDefaults.supervision = merged.proxyDefaultSupervision
        if let limit = merged.httpMaxRequestBytes { config.httpMaxRequestBytes = limit }
        if let limit = merged.httpMaxConnsPerClient { config.httpConnections.maxConnsPerClient = limit }
        if let timeout = merged.httpReadTimeout { config.httpConnections.readTimeout = timeout }
        if let timeout = merged.httpIdleTimeout { config.httpConnections.idleTimeout = timeout }
        config.telemetry = merged.telemetry.settings
        config.caSettings = merged.caSettings
        if let address = merged.advertiseAddr, IPAddressText.isValid(address) { config.advertiseAddr = address }
        config.fleet = merged.fleet.flatMap { $0.settings(problem: problem) }
        config.acl = ACLSettings().overlaid(by: merged.acl)
        config.intentions = merged.intentions
        if config.fleet != nil, !merged.intentions.isEmpty {
            problem("intentions", "intentions in config files are host-local and cannot be used with a fleet block: in fleet mode intentions are shared through etcd; create them with the API (/v1/connect/intentions) on any host")
        }
        var seenIntentions: Set<String> = []
        for intention in merged.intentions {
            let key = "\(intention.sourceName) => \(intention.destinationName)"
            if !seenIntentions.insert(key).inserted {
                problem("intentions", "duplicate intention found: default/\(intention.sourceName) => default/\(intention.destinationName)")
            }
        }
        if config.acl.enabled && config.acl.masterToken == nil && config.acl.staticTokens.isEmpty {
            problem("acl.tokens.master", "ACLs are enabled but no token is defined: set acl.tokens.master or acl.static_tokens")
        }

        problems += ServiceSetRules.check(merged.services)
        config.services = merged.services.map(\.definition)
        config.enableScriptChecks = merged.enableScriptChecks ?? false
        config.enableLocalScriptChecks = merged.enableLocalScriptChecks ?? false
        config.checks = merged.checks.map(\.definition)
        problems += CheckSetRules.check(services: merged.services, checks: merged.checks,
                                        scriptsAllowed: config.enableScriptChecks || config.enableLocalScriptChecks)
        if !config.connectEnabled, let managed = merged.services.first(where: { $0.definition.managedProxy != nil }) {
            problems.append(ConfigProblem(file: managed.file, keyPath: "\(managed.keyPath).connect.proxy",
                                          message: "managed proxies need Connect; remove connect.enabled=false or the proxy"))
        }
        guard problems.isEmpty else { throw ConfigErrors(problems) }
        return config
    }
}

/// Rules across all services of a configuration: unique IDs, no clash with proxy IDs.
enum ServiceSetRules {
    static func check(_ services: [LocatedService]) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        var owners: [String: LocatedService] = [:]
        func place(_ s: LocatedService) -> String { [s.file, s.keyPath].compactMap { $0 }.joined(separator: ": ") }
        func claim(_ id: String, by service: LocatedService, what: String) {
            if let previous = owners[id] {
                problems.append(ConfigProblem(file: service.file, keyPath: "\(service.keyPath).id",
                                              message: "\(what) \"\(id)\" is already used by the service at \(place(previous))"))
            } else {
                owners[id] = service
            }
        }
        for service in services {
            claim(service.definition.id, by: service, what: "duplicate service ID")
            if service.definition.managedProxy != nil {
                claim(service.definition.proxyServiceID, by: service, what: "managed proxy service ID")
            }
        }
        return problems
    }
}

/// Syntax checks for IP address literals (no name resolution).
public enum IPAddressText {
    public static func isValid(_ text: String) -> Bool { isIPv4(text) || isIPv6(text) }

    public static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isASCII) && part.allSatisfy(\.isNumber)
                && (Int(part) ?? 256) <= 255 && !(part.count > 1 && part.first == "0")
        }
    }

    public static func isIPv6(_ text: String) -> Bool {
        guard text.contains(":"), !text.contains(":::"), text.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return false }
        let doubleColons = text.components(separatedBy: "::").count - 1
        guard doubleColons <= 1 else { return false }
        var groups = text.split(separator: ":", omittingEmptySubsequences: true).map(String.init)
        var groupCount = groups.count
        if let last = groups.last, last.contains(".") {
            guard isIPv4(last) else { return false }
            groups.removeLast()
            groupCount += 1
        }
        guard groups.allSatisfy({ $0.count <= 4 && !$0.contains(".") }) else { return false }
        return doubleColons == 1 ? groupCount < 8 : groupCount == 8
    }
}

/// Rules across every check of a configuration: unique IDs, a known service, scripts only when enabled.
public enum CheckSetRules {
    /// Consul's words when a script check meets an agent that runs none.
    public static let scriptsDisabled = "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true"

    static func check(services: [LocatedService], checks: [LocatedCheck], scriptsAllowed: Bool) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        var seen: [String: String] = [:]
        let serviceIDs = Set(services.map(\.definition.id))
        func place(_ file: String?, _ keyPath: String) -> String { [file, keyPath].compactMap { $0 }.joined(separator: ": ") }
        func visit(_ check: CheckDefinition, file: String?, keyPath: String) {
            if let previous = seen[check.id] {
                problems.append(ConfigProblem(file: file, keyPath: keyPath, message: "duplicate check ID \"\(check.id)\" (also at \(previous))"))
            } else {
                seen[check.id] = place(file, keyPath)
            }
            if case .script = check.probe, !scriptsAllowed {
                problems.append(ConfigProblem(file: file, keyPath: keyPath + ".args", message: scriptsDisabled))
            }
        }
        for service in services {
            let checks = service.definition.checks
            for (index, check) in checks.enumerated() {
                visit(check, file: service.file, keyPath: service.keyPath + (checks.count == 1 ? ".check" : ".checks[\(index)]"))
            }
        }
        for located in checks {
            visit(located.definition, file: located.file, keyPath: located.keyPath)
            if let serviceID = located.definition.serviceID, !serviceIDs.contains(serviceID) {
                problems.append(ConfigProblem(file: located.file, keyPath: located.keyPath + ".service_id",
                                              message: "no service with ID \"\(serviceID)\" in the configuration"))
            }
        }
        return problems
    }
}
