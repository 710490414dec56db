// Consul's colon-hex text for key IDs, fingerprints and serials (`HexString` in parsing.go).

public enum ColonHex {
    /// Lowercase two-digit hex bytes joined by `:` (`08`, `01:2c`).
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var result: [UInt8] = []
        for byte in bytes {
            if !result.isEmpty { result.append(UInt8(ascii: ":")) }
            result.append(digits[Int(byte >> 4)])
            result.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// Minimal big-endian bytes of `value` (at least one byte), as Go's big.Int.Bytes of a serial.
    public static func bigEndianBytes(_ value: UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        var rest = value
        repeat {
            bytes.insert(UInt8(rest & 0xff), at: 0)
            rest >>= 8
        } while rest > 0
        return bytes
    }

    /// Normalizes a serial given with or without colons (`0a:1b`, `0A1B`) to lowercase plain hex;
    /// nil when it is not hex.
    public static func normalizedSerial(_ text: String) -> String? {
        let plain = String(text.filter { $0 != ":" }).lowercased()
        guard !plain.isEmpty, plain.allSatisfy(\.isHexDigit) else { return nil }
        return plain
    }
}
