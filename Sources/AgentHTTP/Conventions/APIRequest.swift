// A request as handlers see it: decoded path, query parameters, headers and the collected body.

import ConnectdCore

public struct APIRequest: Sendable {
    public var method: String
    /// The URL-decoded path (`/v1/agent/service/web`).
    public var path: String
    /// For a prefix route, the rest of the path after the prefix (`web`).
    public var pathSuffix: String = ""
    /// Query parameters in order; a presence-only parameter (`?pretty`) has an empty value.
    public var query: [(String, String)]
    /// Header names are lower-cased.
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(method: String, path: String, query: [(String, String)], headers: [(String, String)], body: [UInt8]) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// The first value of a query parameter, or nil when absent.
    public func queryValue(_ name: String) -> String? { query.first { $0.0 == name }?.1 }

    public func hasQuery(_ name: String) -> Bool { query.contains { $0.0 == name } }

    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.0 == lowered }?.1
    }

    /// Splits a raw query string the way Go's `url.ParseQuery` does (`+` is a space).
    public static func parseQuery(_ raw: String) -> [(String, String)] {
        raw.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = PercentDecoding.decode(String(parts[0]), plusIsSpace: true)
            let value = parts.count > 1 ? PercentDecoding.decode(String(parts[1]), plusIsSpace: true) : ""
            return (name, value)
        }
    }
}

public enum PercentDecoding {
    /// Decodes `%XX` escapes; invalid escapes are kept literally.
    public static func decode(_ text: String, plusIsSpace: Bool = false) -> String {
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var index = 0
        while index < utf8.count {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%"), index + 2 < utf8.count,
               let value = UInt8(String(decoding: utf8[(index + 1)...(index + 2)], as: UTF8.self), radix: 16) {
                bytes.append(value)
                index += 3
            } else {
                bytes.append(plusIsSpace && byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
