// The status of each managed proxy's "Connect Proxy Listening" check, for the health endpoints.

import AgentStore
import Synchronization

public struct CheckStatus: Sendable, Equatable {
    /// `passing` or `critical`.
    public var status: String
    public var output: String

    public init(status: String, output: String) {
        self.status = status
        self.output = output
    }

    public static let pending = CheckStatus(status: "critical", output: "not checked yet")
    public var isPassing: Bool { status == "passing" }
}

public final class HealthBoard: Sendable {
    private let statuses = Mutex<[String: CheckStatus]>([:])

    public init() {}

    /// The check of proxy `id` (critical until a check passed).
    public func status(of id: String) -> CheckStatus { statuses.withLock { $0[id] } ?? .pending }

    /// Records a result; returns true when the status (passing/critical) changed.
    @discardableResult
    public func record(_ id: String, _ status: CheckStatus) -> Bool {
        statuses.withLock { statuses in
            let changed = statuses[id]?.status != status.status
            statuses[id] = status
            return changed
        }
    }

    /// Forgets proxies no longer present.
    public func retain(only ids: Set<String>) {
        statuses.withLock { statuses in statuses = statuses.filter { ids.contains($0.key) } }
    }
}
