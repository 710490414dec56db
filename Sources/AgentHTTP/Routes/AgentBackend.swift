// What the HTTP API needs from the agent, so routes stay free of lifecycle and process code.

import AgentConfig
import AgentState
import AgentStore
import Authorization
import CertificateAuthority
import ConnectdCore
import Telemetry

/// Build and version facts reported by `/v1/agent/self`.
public struct BuildInfo: Sendable {
    /// connectd's own version.
    public var version: String
    /// The Consul API version connectd speaks, reported as `Config.Version` for clients that check it.
    public var consulAPIVersion: String

    public init(version: String, consulAPIVersion: String = "1.5.3") {
        self.version = version
        self.consulAPIVersion = consulAPIVersion
    }
}

/// The agent as routes see it.
public protocol AgentBackend: Sendable {
    /// The one owner of durable truth: services, proxies, intentions, the CA.
    var state: AgentState { get }
    /// Leaf certificates per (service, token), renewed in the background.
    var leaves: LeafCache { get }
    /// The "Connect Proxy Listening" check of each managed proxy.
    var health: HealthBoard { get }
    /// The state of every service and node check.
    var checks: CheckBoard { get }
    var build: BuildInfo { get }
    /// The process's metrics (`/v1/agent/metrics`); routes record their own into it.
    var metrics: MetricsHub { get }
    /// The stable node ID (UUID) kept under data_dir.
    var nodeID: String { get }
    /// The command a managed proxy runs when neither its definition nor `proxy_defaults` names one.
    var builtinProxyCommand: [String] { get }
    /// The configuration currently applied (changes on reload).
    func configuration() -> AgentConfiguration
    /// One part of the configuration currently applied, without copying the rest (per-request
    /// reads on the event loop).
    func configuration<Part: Sendable>(_ part: (AgentConfiguration) -> Part) -> Part
    /// Re-reads the config files and applies them; throws the problems and keeps the old config.
    func reload() async throws
    /// Fleet mode: the fleet as this agent sees it (hosts, etcd members, the view); nil on a single host.
    func fleetStatus() async -> JSONValue?
    /// Fleet mode: one line about the fleet; nil on a single host.
    func fleetSummary() async -> String?
    /// Fleet mode: retires host `node` from the fleet; the number of its catalog entries deleted,
    /// nil on a single host.
    func removeFleetHost(_ node: String) async throws -> Int?
    /// Fleet mode: rotates the fleet's root (a root holder only); nil on a single host.
    func rotateFleetRoot() async throws -> Bool?
    /// Fleet mode: notes a query for `service`'s catalog; true when this agent keeps it (answer
    /// at once). Always true on a single host.
    func fleetUses(service: String) -> Bool
    /// Fleet mode: starts keeping `service`'s catalog and waits (bounded) until it is listed.
    func fleetUse(service: String) async
    /// Fleet mode: every service in the fleet with its tags, read from etcd, and the etcd
    /// revision read; nil on a single host.
    func fleetCatalogServices() async throws -> (services: [String: Set<String>], revision: Int64)?
}

extension AgentBackend {
    public func fleetStatus() async -> JSONValue? { nil }
    public func fleetSummary() async -> String? { nil }
    public func removeFleetHost(_ node: String) async throws -> Int? { nil }
    public func rotateFleetRoot() async throws -> Bool? { nil }
    public func fleetUses(service: String) -> Bool { true }
    public func fleetUse(service: String) async {}
    public func fleetCatalogServices() async throws -> (services: [String: Set<String>], revision: Int64)? { nil }
    public func configuration<Part: Sendable>(_ part: (AgentConfiguration) -> Part) -> Part { part(configuration()) }
}
