// Consul's in-memory metrics (go-metrics' InmemSink), the source of `GET /v1/agent/metrics`:
// counters and samples are aggregated per 10-second interval and the last finished interval is
// shown; gauges show their latest value.

import ConnectdCore
import CoreMetrics
import Glibc
import Synchronization

/// A series' identity: its name and its labels in order.
struct SeriesKey: Hashable, Sendable {
    let name: String
    let labels: [String]

    init(_ name: String, _ dimensions: [(String, String)]) {
        self.name = name
        self.labels = dimensions.flatMap { [$0.0, $0.1] }
    }

    var dimensions: [(String, String)] {
        stride(from: 0, to: labels.count, by: 2).map { (labels[$0], labels[$0 + 1]) }
    }
}

/// Count, sum, sum of squares, min and max of the values recorded in one interval.
struct IntervalAggregate: Sendable {
    let start: Int64
    var count = 0
    var sum = 0.0
    var sumOfSquares = 0.0
    var min = Double.infinity
    var max = -Double.infinity

    init(start: Int64) { self.start = start }

    mutating func add(_ value: Double) {
        count += 1
        sum += value
        sumOfSquares += value * value
        min = Swift.min(min, value)
        max = Swift.max(max, value)
    }

    var mean: Double { count == 0 ? 0 : sum / Double(count) }

    /// The sample standard deviation, as go-metrics computes it (0 below two values).
    var standardDeviation: Double {
        guard count > 1 else { return 0 }
        let variance = (sumOfSquares - sum * sum / Double(count)) / Double(count - 1)
        return variance > 0 ? variance.squareRoot() : 0
    }
}

/// A counter, timer or aggregating recorder: the current interval and the one before it.
final class IntervalSeries: CounterHandler, FloatingPointCounterHandler, RecorderHandler, TimerHandler, Sendable {
    enum Kind { case counter, sample }
    let kind: Kind
    private let clock: IntervalClock
    private let slots = Mutex<(current: IntervalAggregate?, previous: IntervalAggregate?)>((nil, nil))

    init(kind: Kind, clock: IntervalClock) {
        self.kind = kind
        self.clock = clock
    }

    func add(_ value: Double) {
        let start = clock.currentStart()
        slots.withLock { slots in
            if slots.current?.start != start {
                slots.previous = slots.current
                slots.current = IntervalAggregate(start: start)
            }
            slots.current!.add(value)
        }
    }

    /// What was recorded in the interval that began at `start`, if anything.
    func aggregate(startingAt start: Int64) -> IntervalAggregate? {
        slots.withLock { slots in
            if let current = slots.current, current.start == start { return current }
            if let previous = slots.previous, previous.start == start { return previous }
            return nil
        }
    }

    func increment(by amount: Int64) { add(Double(amount)) }
    func increment(by amount: Double) { add(amount) }
    func reset() { slots.withLock { $0 = (nil, nil) } }
    func record(_ value: Int64) { add(Double(value)) }
    func record(_ value: Double) { add(value) }
    /// Timers are shown in milliseconds, as Consul's are.
    func recordNanoseconds(_ duration: Int64) { add(Double(duration) / 1_000_000) }
}

/// A gauge (a non-aggregating recorder or a meter): its latest value.
final class IntervalGauge: RecorderHandler, MeterHandler, Sendable {
    private let value = Mutex<Double>(0)

    var current: Double { value.withLock { $0 } }

    func record(_ value: Int64) { self.value.withLock { $0 = Double(value) } }
    func record(_ value: Double) { self.value.withLock { $0 = value } }
    func set(_ value: Int64) { record(value) }
    func set(_ value: Double) { record(value) }
    func increment(by amount: Double) { value.withLock { $0 += amount } }
    func decrement(by amount: Double) { value.withLock { $0 -= amount } }
}

/// Wall-clock interval boundaries (10 s, aligned like go-metrics' intervals).
struct IntervalClock: Sendable {
    static let seconds: Int64 = 10
    /// Unix time in seconds; replaceable in tests.
    let now: @Sendable () -> Int64

    init(now: @escaping @Sendable () -> Int64 = { Int64(time(nil)) }) { self.now = now }

    func currentStart() -> Int64 { now() / Self.seconds * Self.seconds }
}

/// The in-memory side of the hub: one handler per series, read back for the JSON form.
final class IntervalSink: MetricsFactory, Sendable {
    let clock: IntervalClock
    private let createdInterval: Int64
    private let series = Mutex<[SeriesKey: any Sendable]>([:])

    init(clock: IntervalClock = IntervalClock()) {
        self.clock = clock
        createdInterval = clock.currentStart()
    }

    private func handler<Handler: Sendable>(_ key: SeriesKey, make: () -> Handler) -> Handler {
        series.withLock { series in
            if let existing = series[key] as? Handler { return existing }
            let made = make()
            series[key] = made
            return made
        }
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        handler(SeriesKey(label, dimensions)) { IntervalSeries(kind: .counter, clock: clock) }
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        handler(SeriesKey(label, dimensions)) { IntervalSeries(kind: .counter, clock: clock) }
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        if aggregate { return handler(SeriesKey(label, dimensions)) { IntervalSeries(kind: .sample, clock: clock) } }
        return handler(SeriesKey(label, dimensions)) { IntervalGauge() }
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        handler(SeriesKey(label, dimensions)) { IntervalGauge() }
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        handler(SeriesKey(label, dimensions)) { IntervalSeries(kind: .sample, clock: clock) }
    }

    func destroyCounter(_ handler: any CounterHandler) { forget(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { forget(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { forget(handler) }
    func destroyMeter(_ handler: any MeterHandler) { forget(handler) }
    func destroyTimer(_ handler: any TimerHandler) { forget(handler) }

    private func forget(_ handler: AnyObject) {
        series.withLock { series in
            if let key = series.first(where: { ($0.value as AnyObject) === handler })?.key { series[key] = nil }
        }
    }

    /// Consul's `/v1/agent/metrics` document: the last finished interval (the current one while
    /// the sink is younger than one interval).
    func summary() -> JSONValue {
        let now = clock.currentStart()
        let shown = now > createdInterval ? now - IntervalClock.seconds : now
        let entries = series.withLock { $0 }.sorted {
            $0.key.name != $1.key.name ? $0.key.name < $1.key.name : $0.key.labels.lexicographicallyPrecedes($1.key.labels)
        }
        var gauges: [JSONValue] = []
        var counters: [JSONValue] = []
        var samples: [JSONValue] = []
        for (key, handler) in entries {
            let labels = JSONValue.object(key.dimensions.map { ($0.0, .string($0.1)) })
            if let gauge = handler as? IntervalGauge {
                gauges.append(.object([("Name", .string(key.name)), ("Value", .double(gauge.current)), ("Labels", labels)]))
            } else if let series = handler as? IntervalSeries, let aggregate = series.aggregate(startingAt: shown) {
                let entry = JSONValue.object([
                    ("Name", .string(key.name)), ("Count", .int(Int64(aggregate.count))),
                    ("Rate", .double(aggregate.sum / Double(IntervalClock.seconds))), ("Sum", .double(aggregate.sum)),
                    ("Min", .double(aggregate.min)), ("Max", .double(aggregate.max)), ("Mean", .double(aggregate.mean)),
                    ("Stddev", .double(aggregate.standardDeviation)), ("Labels", labels),
                ])
                if series.kind == .counter { counters.append(entry) } else { samples.append(entry) }
            }
        }
        return .object([
            ("Timestamp", .string(Self.goTime(shown))), ("Gauges", .array(gauges)), ("Points", .array([])),
            ("Counters", .array(counters)), ("Samples", .array(samples)),
        ])
    }

    /// Go's `time.Time.String()` of a UTC time with whole seconds: `2026-12-04 19:30:10 +0000 UTC`.
    static func goTime(_ seconds: Int64) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) +0000 UTC"
    }
}
