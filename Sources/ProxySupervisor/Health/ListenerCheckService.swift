// Consul's "Connect Proxy Listening" TCP check for every managed proxy: passing while its public
// bind port accepts connections. Checked every second while critical, every 10 s while passing;
// a status change moves the state index so health watchers wake.

import AgentState
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
    public var description: String { "ListenerCheckService" }

    public init(state: AgentState, board: HealthBoard, logger: Logger) {
        self.state = state
        self.board = board
        self.logger = logger
    }

    public func run() async throws {
        var lastChecked: [String: ContinuousClock.Instant] = [:]
        let clock = ContinuousClock()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let proxies = state.snapshot.proxies
            board.retain(only: Set(proxies.keys))
            var changed = false
            for (id, proxy) in proxies {
                let interval: Duration = board.status(of: id).isPassing ? .seconds(10) : .seconds(1)
                if let last = lastChecked[id], clock.now - last < interval { continue }
                lastChecked[id] = clock.now
                let host = proxy.registeredBindAddress == "0.0.0.0" || proxy.registeredBindAddress.isEmpty
                    ? "127.0.0.1" : proxy.registeredBindAddress
                let status = await Self.check(host: host, port: proxy.bindPort)
                if board.record(id, status) {
                    changed = true
                    logger.debug("proxy listener check changed", metadata: ["proxy": "\(id)", "status": "\(status.status)"])
                }
            }
            if changed { try? await state.touch() }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// One TCP connect with a 1 s timeout, on a thread of its own (a blocking connect).
    static func check(host: String, port: Int) async -> CheckStatus {
        await withCheckedContinuation { continuation in
            Thread {
                let target = "\(host):\(port)"
                do {
                    let fd = try SimpleHTTPClient.connect(host: host, port: port, timeoutSeconds: 1)
                    close(fd)
                    continuation.resume(returning: CheckStatus(status: "passing", output: "TCP connect \(target): Success"))
                } catch {
                    continuation.resume(returning: CheckStatus(status: "critical", output: "dial tcp \(target): \(error)"))
                }
            }.start()
        }
    }
}
