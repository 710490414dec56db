// Request bodies as Consul decodes them: JSON, with Go's decode-failure texts.

import AgentConfig
import ConnectdCore

enum JSONBody {
    /// Parses `body`; a failure is 400 `Request decode failed: <reason>` (`EOF` for an empty body).
    static func parse(_ body: [UInt8]) throws(APIError) -> JSONValue {
        do {
            return try JSONParser.parse(body)
        } catch {
            let reason = body.allSatisfy({ [0x20, 0x0A, 0x0D, 0x09].contains($0) }) ? "EOF"
                : error.isUnexpectedEnd ? "unexpected EOF" : error.description
            throw APIError.badRequest("Request decode failed: \(reason)")
        }
    }

    /// An object reader over `document` with Consul's case-insensitive API key matching.
    static func object(_ document: JSONValue, sink: ProblemSink) throws(APIError) -> ObjectReader {
        guard let reader = ObjectReader.object(document, path: "", sink: sink, matching: .lenient) else {
            throw APIError.badRequest("Request decode failed: \(sink.problems.first?.message ?? "expected an object")")
        }
        return reader
    }
}
