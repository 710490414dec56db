// AgentHTTP: the Consul 1.5.3-compatible HTTP API: routing, Consul's conventions (errors, tokens,
// blocking parameters, headers) and one route group per endpoint family. It reads AgentState
// snapshots and calls the agent backend; it never touches processes.

import AgentState
import AgentStore

/// An error answer in Consul's form: a status and a plain-text body.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var message: String
    public var headers: [(String, String)] = []

    public init(status: Int, message: String, headers: [(String, String)] = []) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status) \(message)" }

    public static func == (lhs: APIError, rhs: APIError) -> Bool {
        lhs.status == rhs.status && lhs.message == rhs.message
    }

    /// 400 with the text as is (query parsing errors: `Invalid wait time`).
    public static func badRequest(_ message: String) -> APIError { APIError(status: 400, message: message) }

    /// 400 `Bad request: <reason>` (Consul's BadRequestError when mapped correctly).
    public static func badRequestReason(_ reason: String) -> APIError { APIError(status: 400, message: "Bad request: \(reason)") }

    /// 500 `Bad request: <reason>`: Consul 1.5.3 returned some BadRequestErrors by pointer, which
    /// its error mapper missed, so clients saw a 500 (recorded in the goldens). Kept for compatibility.
    public static func badRequestAs500(_ reason: String) -> APIError { APIError(status: 500, message: "Bad request: \(reason)") }

    public static func notFound(_ message: String) -> APIError { APIError(status: 404, message: message) }

    public static let permissionDenied = APIError(status: 403, message: "Permission denied")

    public static func methodNotAllowed(_ method: String, allowed: [String]) -> APIError {
        APIError(status: 405, message: "method \(method) not allowed", headers: [("Allow", Route.allowHeader(allowed))])
    }

    public static func internalError(_ message: String) -> APIError { APIError(status: 500, message: message) }
}

extension APIError {
    /// A refused state change: 403 when the caller may not touch what is there, else 500 with the reason.
    init(_ error: StateError) {
        switch error {
        case .forbidden: self = .permissionDenied
        default: self = .internalError(error.description)
        }
    }
}
