// Go's time.ParseDuration, used for Consul's `wait` parameter and duration config keys.

/// Parses Go duration text (`300000ms`, `1m30s`, `1.5s`, `-2h`, `0`) into nanoseconds.
///
/// Units: `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`. A bare number other than `0` is an error,
/// as in Go. Returns nil for anything Go would reject, and for values that overflow `Int64`.
public enum GoDuration {
    public static func parseNanoseconds(_ text: String) -> Int64? {
        var scalars = Array(text.unicodeScalars)
        var negative = false
        if let first = scalars.first, first == "-" || first == "+" {
            negative = first == "-"
            scalars.removeFirst()
        }
        if scalars.count == 1 && scalars[0] == "0" { return 0 }
        if scalars.isEmpty { return nil }
        var index = 0
        var total: Double = 0
        while index < scalars.count {
            let numberStart = index
            var sawDigit = false
            while index < scalars.count, ("0"..."9").contains(scalars[index]) { index += 1; sawDigit = true }
            if index < scalars.count, scalars[index] == "." {
                index += 1
                while index < scalars.count, ("0"..."9").contains(scalars[index]) { index += 1; sawDigit = true }
            }
            guard sawDigit else { return nil }
            guard let number = Double(String(String.UnicodeScalarView(scalars[numberStart..<index]))) else { return nil }
            let unitStart = index
            while index < scalars.count, !("0"..."9").contains(scalars[index]), scalars[index] != "." { index += 1 }
            let unit = String(String.UnicodeScalarView(scalars[unitStart..<index]))
            guard let scale = unitNanoseconds[unit] else { return nil }
            total += number * scale
            if total > Double(Int64.max) { return nil }
        }
        let rounded = total.rounded(.towardZero)
        guard rounded <= Double(Int64.max) else { return nil }
        return negative ? -Int64(rounded) : Int64(rounded)
    }

    /// Parses Go duration text into a Swift `Duration`.
    public static func parse(_ text: String) -> Duration? {
        parseNanoseconds(text).map { Duration.nanoseconds($0) }
    }

    private static let unitNanoseconds: [String: Double] = [
        "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
        "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
    ]

    /// Formats nanoseconds the way Go's `Duration.String` does (`1m30s`, `1.5s`, `300ms`).
    public static func format(nanoseconds: Int64) -> String {
        if nanoseconds == 0 { return "0s" }
        let negative = nanoseconds < 0
        let magnitude = nanoseconds.magnitude
        var text: String
        if magnitude < 1_000 {
            text = "\(magnitude)ns"
        } else if magnitude < 1_000_000 {
            text = trimmed(magnitude, divisor: 1_000) + "µs"
        } else if magnitude < 1_000_000_000 {
            text = trimmed(magnitude, divisor: 1_000_000) + "ms"
        } else {
            let hours = magnitude / 3_600_000_000_000
            let minutes = (magnitude / 60_000_000_000) % 60
            let seconds = magnitude % 60_000_000_000
            text = ""
            if hours > 0 { text += "\(hours)h" }
            if hours > 0 || minutes > 0 { text += "\(minutes)m" }
            text += trimmed(seconds, divisor: 1_000_000_000) + "s"
        }
        return negative ? "-" + text : text
    }

    private static func trimmed(_ value: UInt64, divisor: UInt64) -> String {
        let whole = value / divisor
        var fraction = value % divisor
        guard fraction > 0 else { return "\(whole)" }
        var width = String(divisor).count - 1
        while fraction % 10 == 0 { fraction /= 10; width -= 1 }
        let digits = String(fraction)
        return "\(whole)." + String(repeating: "0", count: width - digits.count) + digits
    }
}
