// What the supervisor reports as it goes (for metrics), as plain callbacks: this module records
// no metrics itself and knows nothing of how they are kept.

import AgentState

public struct SupervisorEvents: Sendable {
    /// A managed proxy ended and will be started again; `cause` is `exit_<code>`,
    /// `signal_<NAME>` or `spawn_failed`.
    public var restarted: @Sendable (_ proxyID: String, _ cause: String) -> Void
    /// A managed proxy's process was started; `took` is the time the spawn took.
    public var spawned: @Sendable (_ proxyID: String, _ took: Duration) -> Void

    public init(restarted: @escaping @Sendable (_ proxyID: String, _ cause: String) -> Void = { _, _ in },
                spawned: @escaping @Sendable (_ proxyID: String, _ took: Duration) -> Void = { _, _ in }) {
        self.restarted = restarted
        self.spawned = spawned
    }

    /// The `cause` label of an exit.
    public static func cause(_ exit: ExitStatus) -> String {
        switch exit {
        case .exited(let code): "exit_\(code)"
        case .signaled(let signal): "signal_" + (signalNames[signal] ?? String(signal))
        case .unknown: "unknown"
        }
    }

    static let signalNames: [Int32: String] = [
        1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 6: "ABRT", 7: "BUS", 8: "FPE", 9: "KILL", 10: "USR1", 11: "SEGV",
        12: "USR2", 13: "PIPE", 14: "ALRM", 15: "TERM",
    ]
}
