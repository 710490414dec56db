// Which services' catalog this agent keeps: those its own registrations and proxies use
// (pinned, recomputed with each publication) and those HTTP clients asked for (kept until no
// one asked for `idle`, longer than any blocking query waits). Read and written from any thread:
// a catalog query checks it on the event loop before answering.

import Synchronization

public final class FleetInterest: Sendable {
    private struct State {
        var pinned: Set<String> = []
        var asked: [String: ContinuousClock.Instant] = [:]
        /// Services whose catalog scope is listed and watched.
        var listed: Set<String> = []
    }

    private let state = Mutex(State())
    /// How long a service nobody pins stays watched after its last query.
    public let idle: Duration

    public init(idle: Duration = .seconds(15 * 60)) { self.idle = idle }

    /// Notes a query for `service`; true when its catalog is already kept (answer now).
    public func ask(_ service: String, now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { state in
            state.asked[service] = now
            return state.listed.contains(service)
        }
    }

    /// The services this host's registrations and proxies use; true when that changed.
    public func pin(_ services: Set<String>) -> Bool {
        state.withLock { state in
            guard state.pinned != services else { return false }
            state.pinned = services
            return true
        }
    }

    /// What to keep now; forgets what was asked for longer than `idle` ago.
    public func services(now: ContinuousClock.Instant = .now) -> Set<String> {
        state.withLock { state in
            state.asked = state.asked.filter { now - $0.value < idle }
            return state.pinned.union(state.asked.keys)
        }
    }

    /// Called by the feed with the services whose scopes it lists and watches.
    func setListed(_ services: Set<String>) { state.withLock { $0.listed = services } }

    public var listed: Set<String> { state.withLock { $0.listed } }
}
