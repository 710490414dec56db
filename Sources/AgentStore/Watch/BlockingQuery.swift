// One blocking-query loop for both of Consul's styles: index-based and hash-based.

import Synchronization

/// What the client already has; the query blocks while the answer would be the same.
public enum BlockingCondition: Sendable, Equatable {
    /// Answer at once.
    case none
    /// `?index=N`: block while the resource's index is ≤ N.
    case index(UInt64)
    /// `?hash=H`: block while the response's content hash equals H.
    case hash(String)
}

/// A response as seen by the blocking loop: its resource index and content hash.
public protocol BlockingResult {
    var resourceIndex: UInt64 { get }
    var contentHash: String { get }
}

public enum BlockingQuery {
    /// Default and maximum waits, as Consul (5 and 10 minutes).
    public static let defaultWait: Duration = .seconds(300)
    public static let maximumWait: Duration = .seconds(600)

    /// The wait a client asked for, clamped to the maximum, plus jitter of up to wait/16.
    public static func effectiveWait(requested: Duration?, jitter: Double = Double.random(in: 0..<1)) -> Duration {
        var wait = requested ?? defaultWait
        if wait <= .zero { wait = defaultWait }
        if wait > maximumWait { wait = maximumWait }
        return wait + wait * (jitter / 16)
    }

    /// Evaluates `evaluate` until its result differs from `condition`, the wait ends, or shutdown.
    ///
    /// Each evaluation reads the current snapshot; between evaluations the query parks on `watch`
    /// for any change after the index it evaluated at. Errors from `evaluate` (404 when the watched
    /// thing is removed, 403) end the loop at once. Cancelling the task answers with a fresh
    /// evaluation.
    public static func run<Result: BlockingResult & Sendable>(
        watch: IndexWatch, condition: BlockingCondition, wait: Duration, evaluate: @escaping @Sendable () throws -> Result
    ) async throws -> Result {
        let parked = Mutex<ParkedQuery?>(nil)
        let outcome: Swift.Result<Result, any Error> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                switch start(watch: watch, condition: condition, wait: wait, evaluate: evaluate,
                             deliver: { continuation.resume(returning: $0) }) {
                case .ready(let result): continuation.resume(returning: result)
                case .parked(let query):
                    parked.withLock { $0 = query }
                    if Task.isCancelled { query.finish() }
                }
            }
        } onCancel: {
            parked.withLock { $0 }?.finish()
        }
        return try outcome.get()
    }

    /// What ``start(watch:condition:wait:evaluate:deliver:)`` found.
    public enum Start<Result: Sendable> {
        /// Nothing to wait for: the answer (or the error) is here, and `deliver` is never called.
        case ready(Swift.Result<Result, any Error>)
        /// The query is parked; `deliver` will be called once, from whichever thread ends it.
        case parked(ParkedQuery)
    }

    /// The callback form of ``run(watch:condition:wait:evaluate:)``, for code that must not
    /// suspend (an event loop): it costs a parked callback on the watch and no task.
    public static func start<Result: BlockingResult & Sendable>(
        watch: IndexWatch, condition: BlockingCondition, wait: Duration,
        evaluate: @escaping @Sendable () throws -> Result,
        deliver: @escaping @Sendable (Swift.Result<Result, any Error>) -> Void
    ) -> Start<Result> {
        let deadline = ContinuousClock.now.advanced(by: wait)
        let query = ParkedQuery(watch: watch)
        // Weak: the query must not own a closure that owns it (every answered request leaked one).
        query.setAnswerNow { [weak query] in query?.end(Swift.Result { try evaluate() }, deliver) }
        // Evaluates and parks again until the answer differs or the wait is over; returns the
        // answer when there is one, nil when parked.
        @Sendable func step() -> Swift.Result<Result, any Error>? {
            while true {
                let seenIndex = watch.index
                let result: Result
                do { result = try evaluate() } catch { return .failure(error) }
                guard unchanged(result, condition) else { return .success(result) }
                let remaining = ContinuousClock.now.duration(to: deadline)
                guard remaining > .zero else { return .success(result) }
                let parked = watch.park(after: seenIndex, timeout: remaining) { outcome in
                    switch outcome {
                    case .changed:
                        if let answer = step() { query.end(answer, deliver) }
                    case .timedOut, .shutDown, .cancelled:
                        query.end(Swift.Result { try evaluate() }, deliver)
                    }
                }
                switch parked {
                case .success(let ticket):
                    if query.hold(ticket) { return nil }
                    // Finished or abandoned while parking: take the callback back if still there.
                    if watch.unpark(ticket), query.finishRequested { return .success(result) }
                    return nil
                case .failure(let immediate):
                    if case .changed = immediate.outcome { continue }
                    return Swift.Result { try evaluate() }
                }
            }
        }
        if let answer = step() {
            query.release()
            return .ready(answer)
        }
        return .parked(query)
    }

    /// Whether `result` is what the client already has (the query would wait).
    public static func unchanged<Result: BlockingResult>(_ result: Result, _ condition: BlockingCondition) -> Bool {
        switch condition {
        case .none: false
        case .index(let index): index > 0 && result.resourceIndex <= index
        case .hash(let hash): !hash.isEmpty && result.contentHash == hash
        }
    }
}
