// Recording a Swift `Duration` into a swift-metrics timer without Foundation.

import CoreMetrics

extension CoreMetrics.Timer {
    /// Records `elapsed` (negative durations record 0).
    public func record(elapsed: Duration) {
        let (seconds, attoseconds) = elapsed.components
        recordNanoseconds(max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
    }
}
