// The HTTP API's connection bounds as configured under `limits`: connections per client address
// and how long a request may take to arrive or a kept connection may sit idle.

public struct HTTPLimits: Sendable, Equatable {
    /// `limits.http_max_conns_per_client` (Consul's name and default): open connections from one
    /// source IP; 0 turns the bound off. Further connections are closed as soon as they are accepted.
    public var maxConnsPerClient = 200
    /// `limits.http_read_timeout`: a request's head and body must arrive within this, counted from
    /// the connection's start or the request's first byte.
    public var readTimeout: Duration = .seconds(30)
    /// `limits.http_idle_timeout`: a kept-alive connection with no request in it is closed after
    /// this. A request parked on a blocking query is not idle. Longer than the 90 s after which
    /// Go's HTTP client (Consul's proxies) drops an idle connection, so the client closes first.
    public var idleTimeout: Duration = .seconds(120)

    public init() {}

    /// The smallest and largest timeouts accepted (a zero timeout would close every connection).
    static let timeoutRange: ClosedRange<Duration> = .milliseconds(100)...(.seconds(24 * 3600))

    static func timeout(_ reader: ObjectReader, _ key: String) -> Duration? {
        guard let value = SupervisionSettings.duration(reader, key) else { return nil }
        guard timeoutRange.contains(value) else {
            reader.report(key, "\(SupervisionSettings.format(value)) is out of range (100ms-24h)")
            return nil
        }
        return value
    }
}
