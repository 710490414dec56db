// Why a CA operation failed; the CA's state is unchanged when one is thrown.

public enum CAError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Bad input (a key that does not parse, a root cert that does not match): a 400.
    case invalid(String)
    /// The change could not be saved (full disk): nothing changed.
    case persistence(String)
    /// The stored CA state cannot be used.
    case corruptState(String)
    /// No signing key is available yet (fleet mode before the host's first intermediate): a 503.
    case unavailable(String)

    public var description: String {
        switch self {
        case .invalid(let message): message
        case .persistence(let message): "cannot save CA state: \(message)"
        case .corruptState(let message): message
        case .unavailable(let message): message
        }
    }
}
