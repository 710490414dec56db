// One blocking-query loop for both of Consul's styles: index-based and hash-based.

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
    /// Each evaluation reads the current snapshot; between evaluations the caller parks on `watch`
    /// for any change after the index it evaluated at. Errors from `evaluate` (404 when the watched
    /// thing is removed, 403) end the loop at once.
    public static func run<Result: BlockingResult>(
        watch: IndexWatch, condition: BlockingCondition, wait: Duration, evaluate: () throws -> Result
    ) async throws -> Result {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: wait)
        while true {
            let seenIndex = watch.index
            let result = try evaluate()
            let unchanged: Bool
            switch condition {
            case .none: unchanged = false
            case .index(let index): unchanged = index > 0 && result.resourceIndex <= index
            case .hash(let hash): unchanged = !hash.isEmpty && result.contentHash == hash
            }
            guard unchanged else { return result }
            let remaining = clock.now.duration(to: deadline)
            guard remaining > .zero else { return result }
            switch await watch.wait(after: seenIndex, timeout: remaining) {
            case .changed: continue
            case .timedOut, .shutDown, .cancelled: return try evaluate()
            }
        }
    }
}
