// Telemetry: one process's metrics. It owns the registry every module records into (through
// swift-metrics handles made by ``MetricsHub/factory``), Consul's in-memory intervals behind
// `GET /v1/agent/metrics`, the Prometheus text, and the catalog of names and help texts.

/// What kind of series a metric is, as Prometheus types it.
public enum MetricKind: String, Sendable {
    case counter, gauge, histogram
}

/// One metric's name (Prometheus conventions: `connectd_…`, `_total` for counters, base units)
/// and its help text.
public struct MetricDefinition: Sendable, Hashable {
    public let name: String
    public let kind: MetricKind
    public let help: String

    public init(_ name: String, _ kind: MetricKind, _ help: String) {
        self.name = name
        self.kind = kind
        self.help = help
    }
}

/// Every metric the agent records, in one place (the README's list is made from it).
public enum AgentMetric {
    public static let httpRequests = MetricDefinition(
        "connectd_http_requests_total", .counter, "HTTP API requests answered, by route pattern, method and status code.")
    public static let httpRequestDuration = MetricDefinition(
        "connectd_http_request_duration_seconds", .histogram,
        "Time from a request's last byte to its answer, by route pattern and method (blocking queries include their wait).")
    public static let blockingQueriesParked = MetricDefinition(
        "connectd_blocking_queries_parked", .gauge, "Blocking queries waiting for a change right now.")
    public static let leafCertificates = MetricDefinition(
        "connectd_leaf_certificates_signed_total", .counter,
        "Leaf certificates signed, by reason: new (first request), renewed (near expiry) or reissued (the root changed).")
    public static let rootExpiry = MetricDefinition(
        "connectd_ca_root_expiry_seconds", .gauge, "Seconds until the active root certificate expires.")
    public static let intermediateExpiry = MetricDefinition(
        "connectd_ca_intermediate_expiry_seconds", .gauge, "Fleet mode: seconds until this host's intermediate certificate expires.")
    public static let leafExpiry = MetricDefinition(
        "connectd_leaf_certificate_expiry_seconds", .gauge, "Seconds until the soonest-expiring leaf certificate in the cache expires.")
    public static let authorizeDecisions = MetricDefinition(
        "connectd_authorize_decisions_total", .counter, "Answers of POST /v1/agent/connect/authorize, by result (allowed, denied).")
    public static let intentions = MetricDefinition(
        "connectd_intentions", .gauge, "Intentions known to this agent.")
    public static let managedProxies = MetricDefinition(
        "connectd_managed_proxies", .gauge, "Managed proxies, by supervision state.")
    public static let proxyRestarts = MetricDefinition(
        "connectd_proxy_restarts_total", .counter,
        "Restarts of a managed proxy after it ended, by proxy and cause (exit_<code> or signal_<name>).")
    public static let proxySpawnDuration = MetricDefinition(
        "connectd_proxy_spawn_duration_seconds", .histogram, "Time from starting a managed proxy's process until it runs.")
    public static let reloads = MetricDefinition(
        "connectd_config_reloads_total", .counter, "Configuration reloads, by outcome (applied, refused).")
    public static let configProblems = MetricDefinition(
        "connectd_config_problems", .gauge, "Problems found in the configuration by the last load or reload (0: it was applied).")

    public static let etcdRequestDuration = MetricDefinition(
        "connectd_fleet_etcd_request_duration_seconds", .histogram, "Fleet mode: time of a call to etcd over every endpoint tried, by call (kv/range, lease/keepalive, ...).")
    public static let etcdRequestErrors = MetricDefinition(
        "connectd_fleet_etcd_request_errors_total", .counter, "Fleet mode: calls to etcd that failed on every endpoint or were refused, by call.")
    public static let viewLag = MetricDefinition(
        "connectd_fleet_view_lag_revisions", .gauge, "Fleet mode: the newest etcd revision this agent has seen less the revision of its view.")
    public static let viewWatching = MetricDefinition(
        "connectd_fleet_view_watching", .gauge, "Fleet mode: 1 while the view's watch of etcd is current, 0 while it serves the last view.")
    public static let lease = MetricDefinition(
        "connectd_fleet_lease", .gauge, "Fleet mode: 1 for the state this host's etcd lease is in (starting, held, unconfirmed, stopped).")

    public static let all: [MetricDefinition] = [
        httpRequests, httpRequestDuration, blockingQueriesParked, leafCertificates, rootExpiry, intermediateExpiry, leafExpiry,
        authorizeDecisions, intentions, managedProxies, proxyRestarts, proxySpawnDuration, reloads, configProblems,
        etcdRequestDuration, etcdRequestErrors, viewLag, viewWatching, lease,
    ]
}

/// Every metric `connectd proxy` records (served on `config.prometheus_bind_addr`). Labels:
/// `proxy` (the proxy's ID, or its service when unmanaged), `listener` (`public` or
/// `upstream:<destination>`), `upstream` (a destination name); never a token.
public enum ProxyMetric {
    public static let connections = MetricDefinition(
        "connectd_proxy_connections_accepted_total", .counter, "Connections accepted, by proxy and listener.")
    public static let activeConnections = MetricDefinition(
        "connectd_proxy_connections_active", .gauge, "Connections open now, by proxy and listener.")
    public static let denied = MetricDefinition(
        "connectd_proxy_inbound_denied_total", .counter,
        "Inbound connections refused after the TLS handshake, by reason: intention (authorize said no), no_identity, authorize_failed.")
    public static let handshakeFailures = MetricDefinition(
        "connectd_proxy_tls_handshake_failures_total", .counter, "TLS handshakes that failed or timed out, by proxy and listener.")
    public static let bytesReceived = MetricDefinition(
        "connectd_proxy_received_bytes_total", .counter, "Bytes received from the clients of a listener, by proxy and listener.")
    public static let bytesSent = MetricDefinition(
        "connectd_proxy_sent_bytes_total", .counter, "Bytes sent back to the clients of a listener, by proxy and listener.")
    public static let dialFailures = MetricDefinition(
        "connectd_proxy_upstream_dial_failures_total", .counter,
        "Upstream connections that could not reach a healthy instance (none known, refused, TLS or identity failure), by upstream.")
    public static let dialDuration = MetricDefinition(
        "connectd_proxy_upstream_dial_duration_seconds", .histogram,
        "Time to reach an upstream instance: TCP connect, TLS handshake and identity check, by upstream.")
    public static let agentErrors = MetricDefinition(
        "connectd_proxy_agent_call_errors_total", .counter, "Calls to the agent that failed or were refused, by kind (long_poll, call).")
    public static let leafExpiry = MetricDefinition(
        "connectd_proxy_leaf_certificate_expiry_seconds", .gauge, "Seconds until the proxy's current leaf certificate expires.")

    public static let all: [MetricDefinition] = [
        connections, activeConnections, denied, handshakeFailures, bytesReceived, bytesSent, dialFailures, dialDuration, agentErrors, leafExpiry,
    ]
}
