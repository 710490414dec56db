// Opaque content hashes for hash-based blocking: 64-bit FNV-1a, lowercase hex without padding.

public enum ContentHash {
    /// The hash of a JSON value's compact encoding.
    public static func of(_ value: JSONValue) -> String {
        of(bytes: Array(value.encoded().utf8))
    }

    public static func of(bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return String(hash, radix: 16)
    }
}
