// The agent's `telemetry` block: which metrics are kept (Consul's prefix filter) and the
// Prometheus settings Consul's files carry. connectd serves metrics only over its HTTP API.

/// `telemetry` as applied.
public struct TelemetrySettings: Sendable, Equatable {
    /// `telemetry.prometheus_retention_time`, accepted as Consul writes it. connectd serves
    /// Prometheus text whatever its value (see the README's differences).
    public var prometheusRetentionTime: Duration = .zero
    /// `telemetry.disable_hostname`: accepted; connectd never puts the host name in metric names.
    public var disableHostname = false
    /// `telemetry.filter_default`: whether a metric no `prefix_filter` rule names is kept.
    public var filterDefault = true
    /// `telemetry.prefix_filter`: `+prefix` keeps, `-prefix` drops; the longest matching prefix wins.
    public var prefixFilter: [String] = []

    public init() {}

    /// Whether the metric called `name` is kept under these rules.
    public func keeps(_ name: String) -> Bool {
        var best: (length: Int, keep: Bool)?
        for rule in prefixFilter {
            guard let sign = rule.first else { continue }
            let prefix = rule.dropFirst()
            guard name.hasPrefix(prefix), prefix.count >= (best?.length ?? -1) else { continue }
            best = (prefix.count, sign == "+")
        }
        return best?.keep ?? filterDefault
    }
}

/// What one source says about `telemetry`; every field optional, later sources win per field.
public struct TelemetryFragment: Sendable, Equatable {
    public var prometheusRetentionTime: Duration?
    public var disableHostname: Bool?
    public var filterDefault: Bool?
    public var prefixFilter: [String]?

    public init() {}

    public func merged(with other: TelemetryFragment) -> TelemetryFragment {
        var result = self
        result.prometheusRetentionTime = other.prometheusRetentionTime ?? prometheusRetentionTime
        result.disableHostname = other.disableHostname ?? disableHostname
        result.filterDefault = other.filterDefault ?? filterDefault
        result.prefixFilter = other.prefixFilter ?? prefixFilter
        return result
    }

    var settings: TelemetrySettings {
        var settings = TelemetrySettings()
        if let value = prometheusRetentionTime { settings.prometheusRetentionTime = value }
        if let value = disableHostname { settings.disableHostname = value }
        if let value = filterDefault { settings.filterDefault = value }
        if let value = prefixFilter { settings.prefixFilter = value }
        return settings
    }

    /// Consul's metric sinks, which connectd does not push to.
    static let sinkKeys = ["statsd_address", "statsite_address", "dogstatsd_addr", "dogstatsd_tags", "circonus_api_token",
                           "circonus_api_app", "circonus_api_url", "circonus_submission_interval", "circonus_submission_url",
                           "circonus_check_id", "circonus_check_force_metric_activation", "circonus_check_instance_id",
                           "circonus_check_search_tag", "circonus_check_display_name", "circonus_check_tags",
                           "circonus_broker_id", "circonus_broker_select_tag"]

    static func decode(_ reader: ObjectReader) -> TelemetryFragment {
        var fragment = TelemetryFragment()
        fragment.prometheusRetentionTime = SupervisionSettings.duration(reader, "prometheus_retention_time")
        fragment.disableHostname = reader.bool("disable_hostname")
        fragment.filterDefault = reader.bool("filter_default")
        if let rules = reader.stringArray("prefix_filter") {
            for (index, rule) in rules.enumerated() where !(rule.hasPrefix("+") || rule.hasPrefix("-")) || rule.count < 2 {
                reader.sink.report("\(reader.keyPath("prefix_filter"))[\(index)]",
                                   "invalid rule \"\(rule)\" (expected \"+<metric prefix>\" or \"-<metric prefix>\")")
            }
            fragment.prefixFilter = rules.filter { ($0.hasPrefix("+") || $0.hasPrefix("-")) && $0.count >= 2 }
        }
        for key in sinkKeys {
            reader.rejectIfPresent(key, "not supported: connectd pushes metrics nowhere; scrape GET /v1/agent/metrics?format=prometheus instead")
        }
        reader.rejectIfPresent("metrics_prefix", "not supported: connectd's metric names start with connectd_ (see the README's metrics list)")
        return fragment
    }
}
