// What every connection of one HTTP server shares: the route table, the settings read per
// request (so a reload applies to the next one), the Date header, the registry, each event
// loop's connection clocks and the logger.
// One reference per connection instead of a copy of each.

import AgentConfig
import Logging
import NIOCore

final class ServerContext: Sendable {
    let table: RouteTable
    let maxBodyBytes: @Sendable () -> Int
    let limits: @Sendable () -> HTTPLimits
    let dates = DateHeader()
    let registry: ConnectionRegistry
    /// Requests by route and status, and their latency; nil when not measured.
    let metrics: HTTPMetrics?
    let logger: Logger
    private let clocks: [ObjectIdentifier: ConnectionClocks]

    init(table: RouteTable, maxBodyBytes: @escaping @Sendable () -> Int, limits: @escaping @Sendable () -> HTTPLimits,
         registry: ConnectionRegistry, group: any EventLoopGroup, metrics: HTTPMetrics? = nil, logger: Logger) {
        self.metrics = metrics
        var clocks: [ObjectIdentifier: ConnectionClocks] = [:]
        for loop in group.makeIterator() { clocks[ObjectIdentifier(loop)] = ConnectionClocks(loop: loop) }
        self.clocks = clocks
        self.table = table
        self.maxBodyBytes = maxBodyBytes
        self.limits = limits
        self.registry = registry
        self.logger = logger
    }

    /// The clocks of the connections on `loop`, one of the server's group.
    func clocks(on loop: any EventLoop) -> ConnectionClocks {
        guard let clocks = clocks[ObjectIdentifier(loop)] else { preconditionFailure("\(loop) is not in the server's group") }
        return clocks
    }
}
