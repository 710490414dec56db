// A 64-bit integer as etcd's JSON gateway writes it: a string ("17402656687004652000"), since
// JSON numbers lose precision above 2^53. Read from a string or a number; written as a string.

public struct WireInt: Codable, Sendable, Hashable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var value: Int64

    public init(_ value: Int64) { self.value = value }
    public init(integerLiteral value: Int64) { self.value = value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            // Lease and member IDs are unsigned on the wire and may exceed Int64.max.
            if let signed = Int64(text) {
                value = signed
            } else if let unsigned = UInt64(text) {
                value = Int64(bitPattern: unsigned)
            } else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a 64-bit integer: \(text)")
            }
        } else {
            value = try container.decode(Int64.self)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(String(value))
    }

    public var description: String { String(value) }
}
