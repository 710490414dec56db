// The proxy's current configuration and TLS material, read by every new connection.

import ConnectdCore
import Synchronization

public final class ProxyRuntime: Sendable {
    private struct State {
        var config: ProxyConfig?
        var material: TLSMaterial?
        /// The latest leaf and roots answers, from which `material` is built.
        var leaf: JSONValue?
        var roots: JSONValue?
        /// Last healthy instances per upstream destination, used while the agent is unreachable.
        var instances: [String: [Instance]] = [:]
        /// Last authorize answers per client URI, used while the agent is unreachable.
        var decisions: [String: (authorized: Bool, reason: String, at: ContinuousClock.Instant)] = [:]
        /// Authorize answers by (target, client URI, serial), used instead of asking while young
        /// and while the intentions watch is current (it empties them on every change).
        var cached: [String: (authorized: Bool, reason: String, at: ContinuousClock.Instant)] = [:]
        /// The intentions index the cache is valid for; nil while the watch is not current.
        var intentionsIndex: String?
    }

    public struct Instance: Sendable, Equatable {
        public var host: String
        public var port: Int
    }

    /// How long a remembered authorize answer may stand in for the agent.
    static let decisionLifetime: Duration = .seconds(300)
    /// How long a cached authorize answer is used without asking the agent (the intentions watch
    /// empties the cache at once on a change; this bounds a watch that stalls silently).
    static let cacheLifetime: Duration = .seconds(30)

    private let state = Mutex(State())
    /// Open proxied connections (inbound and upstream), for the stop grace.
    let openConnections = Atomic<Int>(0)

    public init() {}

    public var config: ProxyConfig? { state.withLock { $0.config } }
    public var material: TLSMaterial? { state.withLock { $0.material } }

    func set(config: ProxyConfig) { state.withLock { $0.config = config } }
    func set(material: TLSMaterial) { state.withLock { $0.material = material } }

    func remember(instances: [Instance], for destination: String) {
        state.withLock { $0.instances[destination] = instances }
    }

    func lastInstances(for destination: String) -> [Instance] { state.withLock { $0.instances[destination] } ?? [] }

    func remember(decision: (authorized: Bool, reason: String), for client: String, target: String) {
        state.withLock { state in
            if state.decisions.count > 10_000 { state.decisions.removeAll() }
            state.decisions[target + "\u{0}" + client] = (decision.authorized, decision.reason, ContinuousClock.now)
        }
    }

    /// A cached answer for this client certificate connecting to `target`, if the intentions
    /// watch is current and the answer young enough.
    func cachedDecision(for client: String, serial: String, target: String) -> (authorized: Bool, reason: String)? {
        state.withLock { state in
            guard state.intentionsIndex != nil, let decision = state.cached[target + "\u{0}" + client + "\u{0}" + serial],
                  ContinuousClock.now - decision.at < Self.cacheLifetime else { return nil }
            return (decision.authorized, decision.reason)
        }
    }

    /// Caches an answer the agent gave while the intentions were at `index` (dropped if they
    /// moved on meanwhile).
    func cache(decision: (authorized: Bool, reason: String), for client: String, serial: String, target: String, index: String?) {
        state.withLock { state in
            guard let index, state.intentionsIndex == index else { return }
            if state.cached.count > 10_000 { state.cached.removeAll() }
            state.cached[target + "\u{0}" + client + "\u{0}" + serial] = (decision.authorized, decision.reason, ContinuousClock.now)
        }
    }

    /// The intentions index as the watch last saw it (nil: not current), to pass to `cache`.
    var intentionsIndex: String? { state.withLock { $0.intentionsIndex } }

    /// The intentions watch answered at `index` (nil: it failed): a change empties the cache.
    func intentions(at index: String?) {
        state.withLock { state in
            if state.intentionsIndex != index || index == nil { state.cached.removeAll() }
            state.intentionsIndex = index
        }
    }

    /// A recent answer for `client` connecting to `target`, if one is young enough.
    func lastDecision(for client: String, target: String) -> (authorized: Bool, reason: String)? {
        state.withLock { state in
            guard let decision = state.decisions[target + "\u{0}" + client],
                  ContinuousClock.now - decision.at < Self.decisionLifetime else { return nil }
            return (decision.authorized, decision.reason)
        }
    }

    /// Stores a new leaf or roots answer; returns both when both are known.
    func update(leaf: JSONValue? = nil, roots: JSONValue? = nil) -> (leaf: JSONValue, roots: JSONValue)? {
        state.withLock { state in
            if let leaf { state.leaf = leaf }
            if let roots { state.roots = roots }
            guard let leaf = state.leaf, let roots = state.roots else { return nil }
            return (leaf, roots)
        }
    }
}
