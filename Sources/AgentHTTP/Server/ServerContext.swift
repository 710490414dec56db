// What every connection of one HTTP server shares: the route table, the settings read per
// request (so a reload applies to the next one), the Date header, the registry and the logger.
// One reference per connection instead of a copy of each.

import AgentConfig
import Logging

final class ServerContext: Sendable {
    let table: RouteTable
    let maxBodyBytes: @Sendable () -> Int
    let limits: @Sendable () -> HTTPLimits
    let dates = DateHeader()
    let registry: ConnectionRegistry
    let logger: Logger

    init(table: RouteTable, maxBodyBytes: @escaping @Sendable () -> Int, limits: @escaping @Sendable () -> HTTPLimits,
         registry: ConnectionRegistry, logger: Logger) {
        self.table = table
        self.maxBodyBytes = maxBodyBytes
        self.limits = limits
        self.registry = registry
        self.logger = logger
    }
}
