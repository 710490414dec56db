// Runs every defined check on its interval (one task per check), expires TTL checks, and
// deregisters an API-registered service whose check stayed critical past its
// `deregister_critical_service_after`. A status change calls `changed` (the agent moves its
// index, so blocking health queries wake).

import AgentConfig
import AgentState
import Foundation
import Logging
import ServiceLifecycle

public struct CheckRunner: Service, CustomStringConvertible {
    let board: CheckBoard
    /// Every check that should run now (services' and the node's).
    let checks: @Sendable () -> [CheckDefinition]
    let changed: @Sendable () async -> Void
    /// Deregisters the service of a check critical for too long (API-registered services only).
    let deregister: @Sendable (_ serviceID: String, _ checkID: String) async -> Void
    let logger: Logger
    public var description: String { "CheckRunner" }

    public init(board: CheckBoard, checks: @escaping @Sendable () -> [CheckDefinition], changed: @escaping @Sendable () async -> Void,
                deregister: @escaping @Sendable (String, String) async -> Void, logger: Logger) {
        self.board = board
        self.checks = checks
        self.changed = changed
        self.deregister = deregister
        self.logger = logger
    }

    public func run() async throws {
        let http = HTTPProbes()
        var running: [String: (definition: CheckDefinition, task: Task<Void, Never>?)] = [:]
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var desired: [String: CheckDefinition] = [:]
            for check in checks() where desired[check.id] == nil { desired[check.id] = check }
            for (id, entry) in running where desired[id] != entry.definition {
                entry.task?.cancel()
                running[id] = nil
                board.forget(id)
            }
            board.retain(only: Set(desired.keys))
            for (id, check) in desired where running[id] == nil {
                board.track(check)
                running[id] = (check, Self.needsRuns(check) ? Task { await loop(check, http: http) } : nil)
            }
            if !board.expireTTLs().isEmpty { await changed() }
            await deregisterCritical(desired.values)
            try? await Task.sleep(for: .milliseconds(250))
        }
        for entry in running.values { entry.task?.cancel() }
        for entry in running.values { await entry.task?.value }
        await http.shutdown()
    }

    static func needsRuns(_ check: CheckDefinition) -> Bool {
        if case .ttl = check.probe { false } else { true }
    }

    private func loop(_ check: CheckDefinition, http: HTTPProbes) async {
        while !Task.isCancelled {
            let result: ProbeResult
            switch check.probe {
            case .tcp(let address): result = await TCPProbe.run(address, timeout: check.timeout)
            case .http(let probe): result = await http.run(probe, timeout: check.timeout)
            case .script(let args): result = await ScriptProbe.run(args, timeout: check.timeout)
            case .ttl: return
            }
            if Task.isCancelled { return }
            if board.record(check.id, result.status, output: result.output) {
                logger.info("check changed", metadata: ["check": "\(check.id)", "status": "\(result.status.rawValue)",
                                                        "output": "\(result.output.prefix(200))"])
                await changed()
            }
            try? await Task.sleep(for: check.interval)
        }
    }

    private func deregisterCritical(_ checks: Dictionary<String, CheckDefinition>.Values) async {
        let now = Date()
        for check in checks {
            guard let after = check.deregisterCriticalServiceAfter, let serviceID = check.serviceID,
                  let result = board.result(of: check.id), result.status == .critical,
                  now.timeIntervalSince(result.since) >= Double(after.components.seconds) + Double(after.components.attoseconds) / 1e18
            else { continue }
            await deregister(serviceID, check.id)
        }
    }
}
