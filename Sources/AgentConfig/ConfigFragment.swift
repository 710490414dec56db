// What one config source (a file, or the command-line flags) says; every field optional.

import ConnectdCore

/// A service definition plus where it was written, for messages that span files.
public struct LocatedService: Sendable, Equatable {
    public var definition: ServiceDefinition
    public var file: String?
    public var keyPath: String
}

/// A top-level check plus where it was written.
public struct LocatedCheck: Sendable, Equatable {
    public var definition: CheckDefinition
    public var file: String?
    public var keyPath: String
}

/// One layer of configuration. Layers merge like Consul's: scalars later-wins, services accumulate.
public struct ConfigFragment: Sendable, Equatable {
    public var datacenter: String?
    public var nodeName: String?
    public var dataDir: String?
    public var clientAddr: String?
    public var bindAddr: String?
    /// `advertise_addr`: the address other hosts reach this host's proxies at (fleet mode).
    public var advertiseAddr: String?
    /// `fleet`: present only in fleet mode.
    public var fleet: FleetFragment?
    public var logLevel: String?
    public var logJSON: Bool?
    public var httpPort: Int?
    public var proxyMinPort: Int?
    public var proxyMaxPort: Int?
    public var connectEnabled: Bool?
    public var allowManagedRoot: Bool?
    public var allowManagedAPIRegistration: Bool?
    public var proxyDefaultExecMode: ExecMode?
    public var proxyDefaultDaemonCommand: [String]?
    public var proxyDefaultScriptCommand: [String]?
    public var proxyDefaultConfig: JSONValue?
    public var proxyDefaultSupervision = SupervisionSettings()
    public var httpMaxRequestBytes: Int?
    public var httpMaxConnsPerClient: Int?
    public var httpReadTimeout: Duration?
    public var httpIdleTimeout: Duration?
    public var telemetry = TelemetryFragment()
    /// `enable_script_checks`: `args` checks from the API and config files may run.
    public var enableScriptChecks: Bool?
    /// `enable_local_script_checks`: `args` checks from config files may run.
    public var enableLocalScriptChecks: Bool?
    /// Top-level `check` / `checks`: checks of the node or, with `service_id`, of a service.
    public var checks: [LocatedCheck] = []
    /// `connect.ca_provider` as written (only "consul" is valid).
    public var caProvider: String?
    public var caSettings = CASettings()
    public var acl = ACLFragment()
    /// `intentions`: declarative intentions, accumulated across files.
    public var intentions: [IntentionDefinition] = []
    public var services: [LocatedService] = []
    /// The source that last set a proxy port bound, to place a port-order error.
    public var proxyPortsSource: String?

    public init() {}

    /// Lays `other` over `self`: its set fields win; services are appended.
    public func merged(with other: ConfigFragment) -> ConfigFragment {
        var result = self
        result.datacenter = other.datacenter ?? datacenter
        result.nodeName = other.nodeName ?? nodeName
        result.dataDir = other.dataDir ?? dataDir
        result.clientAddr = other.clientAddr ?? clientAddr
        result.bindAddr = other.bindAddr ?? bindAddr
        result.advertiseAddr = other.advertiseAddr ?? advertiseAddr
        result.fleet = switch (fleet, other.fleet) {
        case (let mine?, let theirs?): mine.merged(with: theirs)
        case (let mine, let theirs): theirs ?? mine
        }
        result.logLevel = other.logLevel ?? logLevel
        result.logJSON = other.logJSON ?? logJSON
        result.httpPort = other.httpPort ?? httpPort
        result.proxyMinPort = other.proxyMinPort ?? proxyMinPort
        result.proxyMaxPort = other.proxyMaxPort ?? proxyMaxPort
        result.connectEnabled = other.connectEnabled ?? connectEnabled
        result.allowManagedRoot = other.allowManagedRoot ?? allowManagedRoot
        result.allowManagedAPIRegistration = other.allowManagedAPIRegistration ?? allowManagedAPIRegistration
        result.proxyDefaultExecMode = other.proxyDefaultExecMode ?? proxyDefaultExecMode
        result.proxyDefaultDaemonCommand = other.proxyDefaultDaemonCommand ?? proxyDefaultDaemonCommand
        result.proxyDefaultScriptCommand = other.proxyDefaultScriptCommand ?? proxyDefaultScriptCommand
        result.proxyDefaultConfig = Self.mergeObjects(proxyDefaultConfig, other.proxyDefaultConfig)
        result.proxyDefaultSupervision = proxyDefaultSupervision.overlaid(by: other.proxyDefaultSupervision)
        result.httpMaxRequestBytes = other.httpMaxRequestBytes ?? httpMaxRequestBytes
        result.httpMaxConnsPerClient = other.httpMaxConnsPerClient ?? httpMaxConnsPerClient
        result.httpReadTimeout = other.httpReadTimeout ?? httpReadTimeout
        result.httpIdleTimeout = other.httpIdleTimeout ?? httpIdleTimeout
        result.telemetry = telemetry.merged(with: other.telemetry)
        result.enableScriptChecks = other.enableScriptChecks ?? enableScriptChecks
        result.enableLocalScriptChecks = other.enableLocalScriptChecks ?? enableLocalScriptChecks
        result.checks = checks + other.checks
        result.caProvider = other.caProvider ?? caProvider
        result.caSettings = caSettings.overlaid(by: other.caSettings)
        result.acl = acl.merged(with: other.acl)
        result.intentions = intentions + other.intentions
        result.services = services + other.services
        if other.proxyMinPort != nil || other.proxyMaxPort != nil { result.proxyPortsSource = other.proxyPortsSource }
        return result
    }

    /// Objects merge key by key (later wins per key); anything else is replaced.
    static func mergeObjects(_ base: JSONValue?, _ overlay: JSONValue?) -> JSONValue? {
        guard let overlay else { return base }
        guard case .object(var members)? = base, case .object(let overlayMembers) = overlay else { return overlay }
        for (key, value) in overlayMembers {
            if let index = members.firstIndex(where: { $0.0 == key }) {
                members[index].1 = value
            } else {
                members.append((key, value))
            }
        }
        return .object(members)
    }
}

extension ConfigFragment {
    /// Decodes the top-level object of a Consul agent JSON config file.
    public static func decode(_ document: JSONValue, sink: ProblemSink) -> ConfigFragment {
        var fragment = ConfigFragment()
        guard let root = ObjectReader.object(document, path: "", sink: sink, matching: .strictSnakeCase) else {
            return fragment
        }
        fragment.datacenter = root.string("datacenter")
        fragment.nodeName = root.string("node_name")
        fragment.dataDir = root.string("data_dir")
        fragment.clientAddr = root.string("client_addr")
        fragment.bindAddr = root.string("bind_addr")
        fragment.advertiseAddr = root.string("advertise_addr")
        if let fleet = root.object("fleet") {
            fragment.fleet = FleetFragment.decode(fleet)
            fleet.finish()
        }
        fragment.logLevel = root.string("log_level")
        fragment.logJSON = root.bool("log_json")
        if let ports = root.object("ports") {
            fragment.httpPort = ports.int("http", in: 0...65535)
            fragment.proxyMinPort = ports.int("proxy_min_port", in: 0...65535)
            fragment.proxyMaxPort = ports.int("proxy_max_port", in: 0...65535)
            if fragment.proxyMinPort != nil || fragment.proxyMaxPort != nil { fragment.proxyPortsSource = sink.file }
            ports.finish()
        }
        if let connect = root.object("connect") {
            fragment.connectEnabled = connect.bool("enabled")
            if let proxy = connect.object("proxy") {
                fragment.allowManagedRoot = proxy.bool("allow_managed_root")
                fragment.allowManagedAPIRegistration = proxy.bool("allow_managed_api_registration")
                proxy.finish()
            }
            if let defaults = connect.object("proxy_defaults") {
                if let mode = defaults.string("exec_mode"), !mode.isEmpty {
                    if let parsed = ExecMode(rawValue: mode) {
                        fragment.proxyDefaultExecMode = parsed
                    } else {
                        defaults.report("exec_mode", "invalid exec mode \"\(mode)\" (expected daemon or script)")
                    }
                }
                fragment.proxyDefaultDaemonCommand = defaults.stringArray("daemon_command")
                fragment.proxyDefaultScriptCommand = defaults.stringArray("script_command")
                fragment.proxyDefaultConfig = defaults.opaqueObject("config")
                fragment.proxyDefaultSupervision = SupervisionSettings.decode(defaults) ?? SupervisionSettings()
                defaults.finish()
            }
            if let provider = connect.string("ca_provider") {
                fragment.caProvider = provider
                if provider != "consul" {
                    connect.report("ca_provider", "unsupported CA provider \"\(provider)\" (connectd has the built-in \"consul\" provider only)")
                }
            }
            if let ca = connect.object("ca_config") {
                fragment.caSettings = CASettings.decode(ca, allowGenerateKey: false)
                ca.finish()
            }
            connect.finish()
        }
        if let acl = root.object("acl") {
            fragment.acl = ACLFragment.decode(acl)
            acl.finish()
        }
        for reader in root.objectArray("intentions") ?? [] {
            if let intention = IntentionDefinition.decode(reader) { fragment.intentions.append(intention) }
        }
        if let limits = root.object("limits") {
            fragment.httpMaxRequestBytes = limits.int("http_max_request_bytes", in: 1024...(1 << 30))
            fragment.httpMaxConnsPerClient = limits.int("http_max_conns_per_client", in: 0...1_000_000)
            fragment.httpReadTimeout = HTTPLimits.timeout(limits, "http_read_timeout")
            fragment.httpIdleTimeout = HTTPLimits.timeout(limits, "http_idle_timeout")
            limits.finish()
        }
        fragment.enableScriptChecks = root.bool("enable_script_checks")
        fragment.enableLocalScriptChecks = root.bool("enable_local_script_checks")
        var checkReaders: [(ObjectReader, String)] = []
        if let single = root.object("check") { checkReaders.append((single, "check")) }
        for (index, check) in (root.objectArray("checks") ?? []).enumerated() { checkReaders.append((check, "checks[\(index)]")) }
        for (check, keyPath) in checkReaders {
            if let definition = CheckDefinitionDecoder.decode(check, service: nil) {
                fragment.checks.append(LocatedCheck(definition: definition, file: sink.file, keyPath: keyPath))
            }
            check.finish()
        }
        if let telemetry = root.object("telemetry") {
            fragment.telemetry = TelemetryFragment.decode(telemetry)
            telemetry.finish()
        }
        if let single = root.object("service") {
            if let definition = ServiceDefinitionDecoder.decode(single, origin: .configFile) {
                fragment.services.append(LocatedService(definition: definition, file: sink.file, keyPath: "service"))
            }
        }
        for (index, reader) in (root.objectArray("services") ?? []).enumerated() {
            if let definition = ServiceDefinitionDecoder.decode(reader, origin: .configFile) {
                fragment.services.append(LocatedService(definition: definition, file: sink.file, keyPath: "services[\(index)]"))
            }
        }
        root.finish()
        fragment.checkValues(sink: sink)
        return fragment
    }

    /// Checks each set value on its own (syntax, allowed words); cross-field rules run after merging.
    /// Flags go through this too, with their own sink.
    public func checkValues(sink: ProblemSink) {
        if let datacenter, datacenter.isEmpty || !datacenter.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
            sink.report("datacenter", "invalid datacenter name \"\(datacenter)\" (letters, digits, '-' and '_' only)")
        }
        if let nodeName, nodeName.isEmpty { sink.report("node_name", "node_name cannot be empty") }
        if let dataDir, dataDir.isEmpty { sink.report("data_dir", "data_dir cannot be empty") }
        if let clientAddr, !IPAddressText.isValid(clientAddr) {
            sink.report("client_addr", "invalid IP address \"\(clientAddr)\"")
        }
        if let bindAddr, !IPAddressText.isValid(bindAddr) {
            sink.report("bind_addr", "invalid IP address \"\(bindAddr)\"")
        }
        if let advertiseAddr, !IPAddressText.isValid(advertiseAddr) {
            sink.report("advertise_addr", "invalid IP address \"\(advertiseAddr)\"")
        }
        if let logLevel, LogLevel(parsing: logLevel) == nil {
            sink.report("log_level", "invalid log level \"\(logLevel)\" (expected trace, debug, info, warn or err)")
        }
    }
}
