// The service definition model, shared by config files and `PUT /v1/agent/service/register`.

import ConnectdCore

/// How a managed proxy runs. Consul accepts `script` but never ran it; connectd keeps it reserved.
public enum ExecMode: String, Sendable, Hashable, CaseIterable {
    case daemon
    case script
}

/// One upstream a managed proxy listens for locally and forwards to over Connect.
public struct Upstream: Sendable, Hashable {
    public var destinationType: String = ""
    public var destinationNamespace: String = ""
    public var destinationName: String = ""
    public var datacenter: String = ""
    public var localBindAddress: String = ""
    public var localBindPort: Int = 0
    /// Opaque per-upstream options (e.g. `connect_timeout_ms`); nil when not given.
    public var config: JSONValue?

    public init() {}
}

/// The `connect.proxy` block: a request for a managed proxy next to the service.
public struct ManagedProxyRequest: Sendable, Hashable {
    /// nil when the definition left it empty (the agent default applies).
    public var execMode: ExecMode?
    /// argv; empty means the agent default command for the mode.
    public var command: [String] = []
    /// Opaque map handed to the proxy through its config endpoint; `.object([])` when absent.
    public var config: JSONValue = .object([])
    public var upstreams: [Upstream] = []
    /// connectd's per-proxy supervision overrides (`restart`, `stop_signal`, ...); nil when none.
    public var supervision: SupervisionSettings?
    /// Set when the proxy was asked for as `connect.sidecar_service` (Consul 1.3+).
    public var sidecar: SidecarRegistration?

    public init() {}

    /// Whether connectd runs the proxy process: always for `connect.proxy`; for a sidecar unless
    /// it has its own `port` or says `"managed": false` (then it is a registration only).
    public var isSupervised: Bool { sidecar.map { $0.managed && $0.port == nil } ?? true }
}

/// `connect.sidecar_service`'s own keys (the rest is the proxy's, in ``ManagedProxyRequest``).
public struct SidecarRegistration: Sendable, Hashable {
    /// nil: `<service id>-sidecar-proxy`.
    public var id: String?
    /// nil: `<service name>-sidecar-proxy`.
    public var name: String?
    /// The port the sidecar listens on; nil: one from the proxy port range.
    public var port: Int?
    /// connectd's key: false registers the sidecar without running it.
    public var managed = true

    public init() {}
}

/// The `connect` block of a service.
public struct ServiceConnect: Sendable, Hashable {
    public var native: Bool = false
    public var proxy: ManagedProxyRequest?

    public init() {}
}

/// Consul's DNS weights; kept for wire compatibility.
public struct ServiceWeights: Sendable, Hashable {
    public var passing: Int
    public var warning: Int

    public init(passing: Int = 1, warning: Int = 1) {
        self.passing = passing
        self.warning = warning
    }
}

/// A service registered with this agent.
public struct ServiceDefinition: Sendable, Hashable {
    /// Unique on this agent; defaults to `name`.
    public var id: String
    public var name: String
    /// nil when not given (Consul prints `[]` for regular services either way).
    public var tags: [String]?
    public var meta: [String: String]?
    public var address: String = ""
    public var port: Int = 0
    public var enableTagOverride: Bool = false
    public var weights: ServiceWeights = ServiceWeights()
    /// The ACL token the service was registered with (from the file or the request).
    public var token: String = ""
    public var connect: ServiceConnect?
    /// `check` and `checks`, in order, with their IDs and names defaulted.
    public var checks: [CheckDefinition] = []

    public init(id: String, name: String) {
        self.id = id
        self.name = name
    }

    /// The managed proxy this service asks for, if any.
    public var managedProxy: ManagedProxyRequest? { connect?.proxy }

    /// `<id>-proxy` (`<id>-sidecar-proxy` for a sidecar): the proxy's service ID, its identity everywhere.
    public var proxyServiceID: String {
        guard let sidecar = managedProxy?.sidecar else { return "\(id)-proxy" }
        return sidecar.id ?? "\(id)-sidecar-proxy"
    }
    /// `<name>-proxy` (Consul 1.2.3+), or `<name>-sidecar-proxy` for a sidecar.
    public var proxyServiceName: String {
        guard let sidecar = managedProxy?.sidecar else { return "\(name)-proxy" }
        return sidecar.name ?? "\(name)-sidecar-proxy"
    }
}
