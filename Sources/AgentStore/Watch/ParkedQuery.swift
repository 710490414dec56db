// A blocking query parked on a watch by callback (see `BlockingQuery.start`): who may still end
// it, and with what. Exactly one answer is delivered, unless the query is abandoned.

import Synchronization

public final class ParkedQuery: Sendable {
    private enum Phase {
        /// Waiting; the ticket of the latest park (nil while evaluating between parks).
        case running(IndexWatch.Ticket?)
        /// ``finish()`` was asked for while the query was between parks.
        case finishing
        case abandoned
        case ended
    }

    private struct State {
        var phase = Phase.running(nil)
        var answerNow: (@Sendable () -> Void)?
    }

    private let watch: IndexWatch
    private let state = Mutex(State())

    init(watch: IndexWatch) {
        self.watch = watch
    }

    /// How ``finish()`` answers: evaluate now and deliver.
    func setAnswerNow(_ answer: @escaping @Sendable () -> Void) {
        state.withLock { $0.answerNow = answer }
    }

    /// Records the ticket of a park. False when the query was finished or abandoned meanwhile
    /// (the parker then takes its callback back).
    func hold(_ ticket: IndexWatch.Ticket) -> Bool {
        state.withLock { state in
            guard case .running(let current) = state.phase else { return false }
            // A wake-up may already have parked again with a newer ticket: keep that one.
            if current.map({ $0 < ticket }) ?? true { state.phase = .running(ticket) }
            return true
        }
    }

    var finishRequested: Bool {
        state.withLock { state in
            if case .finishing = state.phase { return true }
            return false
        }
    }

    /// Delivers `answer` unless the query already ended or was abandoned.
    func end<Result>(_ answer: Swift.Result<Result, any Error>, _ deliver: @Sendable (Swift.Result<Result, any Error>) -> Void) {
        let go = state.withLock { state -> Bool in
            switch state.phase {
            case .abandoned, .ended: return false
            case .running, .finishing:
                state.phase = .ended
                state.answerNow = nil
                return true
            }
        }
        if go { deliver(answer) }
    }

    /// Drops what a query answered without parking still holds (its answer closure).
    func release() {
        state.withLock { state in
            state.phase = .ended
            state.answerNow = nil
        }
    }

    /// Stops waiting and answers with what the query sees now.
    public func finish() {
        let (ticket, answerNow) = state.withLock { state -> (IndexWatch.Ticket?, (@Sendable () -> Void)?) in
            guard case .running(let ticket) = state.phase else { return (nil, nil) }
            state.phase = .finishing
            return (ticket, state.answerNow)
        }
        // If the callback could not be taken back it is running, and it answers.
        if let ticket, watch.unpark(ticket) { answerNow?() }
    }

    /// Stops waiting without answering (the client went away).
    public func abandon() {
        let ticket = state.withLock { state -> IndexWatch.Ticket? in
            guard case .running(let ticket) = state.phase else {
                if case .finishing = state.phase { state.phase = .abandoned }
                return nil
            }
            state.phase = .abandoned
            state.answerNow = nil
            return ticket
        }
        if let ticket { watch.unpark(ticket) }
    }
}
