// Timestamps with microsecond precision that survive a JSON round trip exactly.

import Foundation

/// A time kept in whole microseconds since the epoch, so it survives a text round trip exactly
/// (a `Date` near 2026 cannot hold every microsecond, and flooring it drifts). Written as Go's
/// RFC 3339 with fractional seconds (`2026-11-29T03:48:20.123456Z`), UTC.
public struct Timestamp: Sendable, Equatable, Comparable {
    public let microseconds: Int64

    public init(_ date: Date) {
        microseconds = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    public init(microseconds: Int64) { self.microseconds = microseconds }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.microseconds < rhs.microseconds }

    public var date: Date { Date(timeIntervalSince1970: Double(microseconds) / 1_000_000) }

    public var text: String {
        let (whole, fraction) = microseconds.quotientAndRemainder(dividingBy: 1_000_000)
        let seconds = fraction < 0 ? whole - 1 : whole
        let micros = fraction < 0 ? fraction + 1_000_000 : fraction
        var digits = String(micros)
        digits = String(repeating: "0", count: 6 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        let base = RFC3339.format(Date(timeIntervalSince1970: TimeInterval(seconds))).dropLast()
        return base + (digits.isEmpty ? "" : ".\(digits)") + "Z"
    }

    /// Parses `text`; digits past the sixth are dropped.
    public init?(text: String) {
        guard text.hasSuffix("Z") else { return nil }
        let parts = text.dropLast().split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let base = RFC3339.parse(String(parts[0]) + "Z") else { return nil }
        var micros: Int64 = 0
        if parts.count == 2 {
            let digits = parts[1].prefix(6)
            guard !parts[1].isEmpty, parts[1].allSatisfy(\.isASCII), parts[1].allSatisfy(\.isNumber),
                  let value = Int64(digits + String(repeating: "0", count: 6 - digits.count)) else { return nil }
            micros = value
        }
        microseconds = Int64(base.timeIntervalSince1970) * 1_000_000 + micros
    }
}
