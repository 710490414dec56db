// Answers in Consul's shape: JSON (compact or pretty) with its headers, or empty 200s.

import ConnectdCore

public struct APIResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int = 200, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// 200 with an empty body (successful PUTs).
    public static let empty = APIResponse()

    /// A JSON body; pretty (4 spaces, trailing newline) when the request asked or in `-dev`.
    public static func json(_ value: JSONValue, pretty: Bool, index: UInt64? = nil, contentHash: String? = nil) -> APIResponse {
        encodedJSON(Array(value.encoded(pretty: pretty).utf8), index: index, contentHash: contentHash)
    }

    /// A JSON body that is already encoded (shared by many answers).
    public static func encodedJSON(_ bytes: [UInt8], index: UInt64? = nil, contentHash: String? = nil) -> APIResponse {
        var headers = [("Content-Type", "application/json")]
        if let index { headers.append(("X-Consul-Index", String(max(index, 1)))) }
        // Spelled as Go canonicalizes it, as the goldens show.
        if let contentHash { headers.append(("X-Consul-Contenthash", contentHash)) }
        return APIResponse(status: 200, headers: headers, body: bytes)
    }

    public static func error(_ error: APIError) -> APIResponse {
        APIResponse(status: error.status,
                    headers: error.headers + [("Content-Type", "text/plain; charset=utf-8")],
                    body: Array(error.message.utf8))
    }
}
