// Proxy tokens: 128 random bits from the system CSPRNG, printed as lowercase 8-4-4-4-12 hex.

public enum ProxyToken {
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let hex = bytes.map { byte in
            let text = String(byte, radix: 16)
            return text.count == 1 ? "0" + text : text
        }.joined()
        let cuts = [8, 12, 16, 20]
        var result = ""
        for (offset, character) in hex.enumerated() {
            if cuts.contains(offset) { result += "-" }
            result.append(character)
        }
        return result
    }
}
