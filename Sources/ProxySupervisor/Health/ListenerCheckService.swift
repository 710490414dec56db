// Consul's "Connect Proxy Listening" TCP check for every managed proxy: passing while its public
// bind port accepts connections. Checked every second while critical, every 10 s while passing;
// a status change moves the state index so health watchers wake.

import AgentState
import AgentStore
import ConnectdCore
import Foundation
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

public struct ListenerCheckService: Service, CustomStringConvertible {
    let state: AgentState
    let board: HealthBoard
    let logger: Logger
    /// The agent's `bind_addr`: where a proxy without its own `bind_address` listens.
    let agentBindAddress: @Sendable () -> String
    public var description: String { "ListenerCheckService" }

    public init(state: AgentState, board: HealthBoard, agentBindAddress: @escaping @Sendable () -> String = { "127.0.0.1" },
                logger: Logger) {
        self.state = state
        self.board = board
        self.agentBindAddress = agentBindAddress
        self.logger = logger
    }

    /// Where a proxy's public listener is reached: its `bind_address`, else the agent's
    /// `bind_addr`; loopback when that is a wildcard.
    static func checkAddress(registered: String, agentBindAddress: String) -> String {
        let address = registered.isEmpty ? agentBindAddress : registered
        return ["0.0.0.0", "::", ""].contains(address) ? "127.0.0.1" : address
    }

    public func run() async throws {
        var lastChecked: [String: ContinuousClock.Instant] = [:]
        let clock = ContinuousClock()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let proxies = state.snapshot.proxies
            board.retain(only: Set(proxies.keys))
            var due: [(id: String, host: String, port: Int)] = []
            for (id, proxy) in proxies {
                let interval: Duration = board.status(of: id).isPassing ? .seconds(10) : .seconds(1)
                if let last = lastChecked[id], clock.now - last < interval { continue }
                lastChecked[id] = clock.now
                due.append((id, Self.checkAddress(registered: proxy.registeredBindAddress, agentBindAddress: agentBindAddress()),
                            proxy.bindPort))
            }
            var changed = false
            for (id, status) in await Self.check(due) where board.record(id, status) {
                changed = true
                logger.debug("proxy listener check changed", metadata: ["proxy": "\(id)", "status": "\(status.status)"])
            }
            if changed { try? await state.touch() }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// One TCP connect (1 s timeout) per target, one after another on a thread of their own
    /// (blocking connects; on loopback a closed port is refused at once).
    static func check(_ targets: [(id: String, host: String, port: Int)]) async -> [(String, CheckStatus)] {
        guard !targets.isEmpty else { return [] }
        return await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(returning: targets.map { target in (target.id, check(host: target.host, port: target.port)) })
            }.start()
        }
    }

    static func check(host: String, port: Int) -> CheckStatus {
        let address = "\(host):\(port)"
        do {
            let fd = try SimpleHTTPClient.connect(host: host, port: port, timeoutSeconds: 1)
            close(fd)
            return CheckStatus(status: "passing", output: "TCP connect \(address): Success")
        } catch {
            return CheckStatus(status: "critical", output: "dial tcp \(address): \(error)")
        }
    }
}
