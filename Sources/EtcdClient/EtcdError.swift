// What a call to etcd can end in, with text an operator can act on.

public enum EtcdError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No endpoint answered within the deadline: each endpoint with what happened there.
    case unavailable([String])
    /// The gateway answered with an error: HTTP status, gRPC code, etcd's message.
    case gateway(status: Int, code: Int?, message: String)
    /// An answer that is not the message expected.
    case malformed(path: String, reason: String)

    /// etcd's gRPC codes that a call meets in normal operation.
    public enum Code {
        public static let invalidArgument = 3
        public static let permissionDenied = 7
        public static let outOfRange = 11
        public static let unavailable = 14
        public static let unauthenticated = 16
    }

    public var description: String {
        switch self {
        case .unavailable(let attempts):
            "etcd is unreachable: " + attempts.joined(separator: "; ")
        case .gateway(let status, let code, let message):
            "etcd answered \(status)" + (code.map { " (code \($0))" } ?? "") + ": \(message)"
        case .malformed(let path, let reason):
            "etcd's answer to \(path) could not be read: \(reason)"
        }
    }

    /// Worth asking another member: the member had no leader, timed out on quorum, or failed.
    var triesAnotherEndpoint: Bool {
        guard case .gateway(let status, let code, let message) = self else { return false }
        return status >= 500 || code == Code.unavailable || message.contains("no leader")
    }

    /// The auth token expired or is unknown to this member: authenticate again.
    var needsAuthentication: Bool {
        guard case .gateway(_, let code, let message) = self else { return false }
        return code == Code.unauthenticated || message.contains("invalid auth token")
    }
}
