// How managed proxies are supervised: restart policy, stop signal and grace, environment
// pass-through, log rotation. Set under `connect.proxy_defaults` and per proxy under
// `connect.proxy` (connectd extensions; a proxy's own value wins).

import ConnectdCore

/// Every field optional: a layer that is merged over the defaults.
public struct SupervisionSettings: Sendable, Hashable {
    public var immediateRestarts: Int?
    public var backoffBase: Duration?
    public var backoffMax: Duration?
    public var healthyAfter: Duration?
    public var permanentExitCodes: [Int]?
    public var stopSignal: Int32?
    public var stopGrace: Duration?
    public var environmentPassthrough: [String]?
    public var logMaxBytes: Int?
    public var logMaxFiles: Int?
    /// `file`, `journal` or `auto` (journal when connectd itself logs to journald).
    public var logSink: LogSink?

    public init() {}

    /// `other`'s set fields win.
    public func overlaid(by other: SupervisionSettings?) -> SupervisionSettings {
        guard let other else { return self }
        var result = self
        result.immediateRestarts = other.immediateRestarts ?? immediateRestarts
        result.backoffBase = other.backoffBase ?? backoffBase
        result.backoffMax = other.backoffMax ?? backoffMax
        result.healthyAfter = other.healthyAfter ?? healthyAfter
        result.permanentExitCodes = other.permanentExitCodes ?? permanentExitCodes
        result.stopSignal = other.stopSignal ?? stopSignal
        result.stopGrace = other.stopGrace ?? stopGrace
        result.environmentPassthrough = other.environmentPassthrough ?? environmentPassthrough
        result.logMaxBytes = other.logMaxBytes ?? logMaxBytes
        result.logMaxFiles = other.logMaxFiles ?? logMaxFiles
        result.logSink = other.logSink ?? logSink
        return result
    }

    /// Variables of connectd's own service-manager contract; never passed to a proxy.
    public static let reservedEnvironmentNames: Set<String> = [
        "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
        "INVOCATION_ID", "JOURNAL_STREAM", "MAINPID", "MANAGERPID", "SYSTEMD_EXEC_PID", "TRIGGER_UNIT",
    ]

    /// Signal names accepted for `stop_signal`.
    public static let signalNumbers: [String: Int32] = [
        "SIGTERM": 15, "SIGINT": 2, "SIGQUIT": 3, "SIGHUP": 1, "SIGUSR1": 10, "SIGUSR2": 12, "SIGKILL": 9,
    ]

    /// Reads the supervision keys of `reader` (which may hold other keys too).
    static func decode(_ reader: ObjectReader) -> SupervisionSettings? {
        var settings = SupervisionSettings()
        var any = false
        if let restart = reader.object("restart") {
            any = true
            settings.immediateRestarts = restart.int("immediate", in: 0...1000)
            settings.backoffBase = duration(restart, "backoff_base")
            settings.backoffMax = duration(restart, "backoff_max")
            settings.healthyAfter = duration(restart, "healthy_after")
            if let codes = restart.raw("permanent_exit_codes") {
                if case .array(let elements) = codes, elements.allSatisfy({ if case .int(let c) = $0 { (0...255).contains(c) } else { false } }) {
                    settings.permanentExitCodes = elements.compactMap { if case .int(let c) = $0 { Int(c) } else { nil } }
                } else {
                    restart.report("permanent_exit_codes", "expected an array of exit codes (0-255)")
                }
            }
            restart.finish()
        }
        if let name = reader.string("stop_signal") {
            any = true
            if let number = signalNumbers[name.uppercased().hasPrefix("SIG") ? name.uppercased() : "SIG" + name.uppercased()] {
                settings.stopSignal = number
            } else {
                reader.report("stop_signal", "unknown signal \"\(name)\" (expected one of \(signalNumbers.keys.sorted().joined(separator: ", ")))")
            }
        }
        if reader.has("stop_grace") { any = true; settings.stopGrace = duration(reader, "stop_grace") }
        if let names = reader.stringArray("env_passthrough") {
            any = true
            settings.environmentPassthrough = names
            for name in names where reservedEnvironmentNames.contains(name) {
                reader.report("env_passthrough", "\(name) belongs to connectd's service manager and is never passed to proxies")
            }
        }
        if let logs = reader.object("logs") {
            any = true
            settings.logMaxBytes = logs.int("max_bytes", in: 4096...(1 << 40))
            settings.logMaxFiles = logs.int("max_files", in: 1...1000)
            logs.finish()
        }
        if let sink = reader.string("log_sink") {
            any = true
            if let parsed = LogSink(rawValue: sink) {
                settings.logSink = parsed
            } else {
                reader.report("log_sink", "invalid log sink \"\(sink)\" (expected file, journal or auto)")
            }
        }
        return any ? settings : nil
    }

    /// The settings as registration JSON (snake_case, as in config files), for durable records.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = []
        var restart: [(String, JSONValue)] = []
        if let immediateRestarts { restart.append(("immediate", .int(Int64(immediateRestarts)))) }
        if let backoffBase { restart.append(("backoff_base", .string(Self.format(backoffBase)))) }
        if let backoffMax { restart.append(("backoff_max", .string(Self.format(backoffMax)))) }
        if let healthyAfter { restart.append(("healthy_after", .string(Self.format(healthyAfter)))) }
        if let permanentExitCodes { restart.append(("permanent_exit_codes", permanentExitCodes.json)) }
        if !restart.isEmpty { members.append(("restart", .object(restart))) }
        if let stopSignal, let name = Self.signalNumbers.first(where: { $0.value == stopSignal })?.key {
            members.append(("stop_signal", .string(name)))
        }
        if let stopGrace { members.append(("stop_grace", .string(Self.format(stopGrace)))) }
        if let environmentPassthrough { members.append(("env_passthrough", environmentPassthrough.json)) }
        var logs: [(String, JSONValue)] = []
        if let logMaxBytes { logs.append(("max_bytes", .int(Int64(logMaxBytes)))) }
        if let logMaxFiles { logs.append(("max_files", .int(Int64(logMaxFiles)))) }
        if !logs.isEmpty { members.append(("logs", .object(logs))) }
        if let logSink { members.append(("log_sink", .string(logSink.rawValue))) }
        return .object(members)
    }

    static func format(_ duration: Duration) -> String {
        GoDuration.format(nanoseconds: duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    static func duration(_ reader: ObjectReader, _ key: String) -> Duration? {
        guard let text = reader.string(key) else { return nil }
        guard let nanoseconds = GoDuration.parseNanoseconds(text), nanoseconds >= 0 else {
            reader.report(key, "invalid duration \"\(text)\" (Go syntax, e.g. 300ms, 5s, 1m30s)")
            return nil
        }
        return .nanoseconds(nanoseconds)
    }
}

/// Where a proxy's stdout and stderr go.
public enum LogSink: String, Sendable, Hashable {
    /// Rotated files under data_dir/proxy/logs.
    case file
    /// One journald stream per output, `SYSLOG_IDENTIFIER=<proxy id>`.
    case journal
    /// `journal` when connectd itself runs under journald (JOURNAL_STREAM is set), else `file`.
    case auto
}

/// The supervision settings with every default filled in.
public struct ResolvedSupervision: Sendable, Hashable {
    public var immediateRestarts = 3
    public var backoffBase: Duration = .seconds(2)
    public var backoffMax: Duration = .seconds(60)
    public var healthyAfter: Duration = .seconds(10)
    public var permanentExitCodes: [Int] = [78]
    public var stopSignal: Int32 = 15
    public var stopGrace: Duration = .seconds(5)
    public var environmentPassthrough: [String] = []
    public var logMaxBytes = 10 << 20
    public var logMaxFiles = 5
    public var logSink: LogSink = .auto

    public init() {}

    public init(_ layer: SupervisionSettings) {
        self.init()
        immediateRestarts = layer.immediateRestarts ?? immediateRestarts
        backoffBase = layer.backoffBase ?? backoffBase
        backoffMax = layer.backoffMax ?? backoffMax
        healthyAfter = layer.healthyAfter ?? healthyAfter
        permanentExitCodes = layer.permanentExitCodes ?? permanentExitCodes
        stopSignal = layer.stopSignal ?? stopSignal
        stopGrace = layer.stopGrace ?? stopGrace
        environmentPassthrough = layer.environmentPassthrough ?? environmentPassthrough
        logMaxBytes = layer.logMaxBytes ?? logMaxBytes
        logMaxFiles = layer.logMaxFiles ?? logMaxFiles
        logSink = layer.logSink ?? logSink
    }
}
