// Serializes reloads: one at a time, each re-reading the files after the one before it ends.

/// The reload lifecycle of the agent.
actor ReloadGate {
    enum Phase {
        /// No reload in flight.
        case idle
        /// A reload is running; the task finishes when it has been applied or refused.
        case reloading(Task<Void, any Error>)
        /// The agent is stopping; further reloads are refused.
        case stopping
    }

    private var phase: Phase = .idle

    struct Stopping: Error, CustomStringConvertible {
        var description: String { "Agent was shutdown before reload could be completed" }
    }

    /// Runs `body` after any reload already in flight.
    func run(_ body: @escaping @Sendable () async throws -> Void) async throws {
        let previous: Task<Void, any Error>?
        switch phase {
        case .stopping: throw Stopping()
        case .idle: previous = nil
        case .reloading(let task): previous = task
        }
        let task = Task {
            _ = await previous?.result
            try await body()
        }
        phase = .reloading(task)
        defer {
            if case .reloading(let current) = phase, current == task { phase = .idle }
        }
        try await task.value
    }

    func stop() { phase = .stopping }
}
