// The latest status of every managed proxy: written by the supervisor, read by anyone holding
// the state, without awaiting either. Not durable: a new connectd learns it again by adopting.

import AgentStore
import Synchronization

/// The latest status of every proxy, readable without awaiting the supervisor.
public final class ProxyStatusBoard: Sendable {
    private let entries = Mutex<[String: ProxyStatus]>([:])
    /// Moves whenever any proxy's status changes.
    public let changes = IndexWatch()

    public init() {}

    public func publish(_ status: ProxyStatus) {
        entries.withLock { $0[status.proxyID] = status }
        changes.advance(to: changes.index + 1)
    }

    public func remove(_ id: String) {
        entries.withLock { _ = $0.removeValue(forKey: id) }
        changes.advance(to: changes.index + 1)
    }

    /// Every proxy's latest status, sorted by ID.
    public func all() -> [ProxyStatus] { entries.withLock { $0.values.sorted { $0.proxyID < $1.proxyID } } }
}
