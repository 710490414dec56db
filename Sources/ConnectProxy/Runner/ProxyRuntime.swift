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
    }

    private let state = Mutex(State())
    /// Open proxied connections (inbound and upstream), for the stop grace.
    let openConnections = Atomic<Int>(0)

    public init() {}

    public var config: ProxyConfig? { state.withLock { $0.config } }
    public var material: TLSMaterial? { state.withLock { $0.material } }

    func set(config: ProxyConfig) { state.withLock { $0.config = config } }
    func set(material: TLSMaterial) { state.withLock { $0.material = material } }

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
