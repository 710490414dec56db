// What the proxy runs: its public listener and its upstream listeners, from the agent's proxy
// config answer (managed) or from flags (unmanaged).

import ConnectdCore

public struct PublicListenerConfig: Sendable, Hashable {
    public var bindAddress: String
    public var bindPort: Int
    public var localServiceHost: String
    public var localServicePort: Int
    public var localConnectTimeoutMs: Int = 1000
    public var handshakeTimeoutMs: Int = 10000

    public init(bindAddress: String, bindPort: Int, localServiceHost: String, localServicePort: Int) {
        self.bindAddress = bindAddress
        self.bindPort = bindPort
        self.localServiceHost = localServiceHost
        self.localServicePort = localServicePort
    }
}

public struct UpstreamConfig: Sendable, Hashable {
    public var destinationName: String
    public var datacenter: String = ""
    public var localBindAddress: String = "127.0.0.1"
    public var localBindPort: Int
    public var connectTimeoutMs: Int = 10000

    public init(destinationName: String, localBindPort: Int) {
        self.destinationName = destinationName
        self.localBindPort = localBindPort
    }
}

/// The address of the proxy's metrics listener.
public struct MetricsAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

public struct ProxyConfig: Sendable, Equatable {
    public var targetServiceName: String
    public var publicListener: PublicListenerConfig?
    public var upstreams: [UpstreamConfig] = []
    /// Event-loop threads for the listeners and proxied connections (`config.threads`, 1–64);
    /// a sidecar's load rarely needs more than one.
    public var threads = 1
    /// `config.prometheus_bind_addr` (`host:port`): where the proxy serves its metrics; nil: off.
    public var prometheusBindAddress: MetricsAddress?

    public init(targetServiceName: String, publicListener: PublicListenerConfig? = nil, upstreams: [UpstreamConfig] = []) {
        self.targetServiceName = targetServiceName
        self.publicListener = publicListener
        self.upstreams = upstreams
    }

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    /// From `GET /v1/agent/connect/proxy/:id`.
    public init(agentAnswer body: JSONValue) throws {
        guard let target = body["TargetServiceName"]?.stringValue, !target.isEmpty else {
            throw Invalid(description: "proxy config without TargetServiceName")
        }
        targetServiceName = target
        let config = body["Config"] ?? .object([])
        let bindAddress = config["bind_address"]?.stringValue ?? "0.0.0.0"
        guard let bindPort = Self.int(config["bind_port"]) else { throw Invalid(description: "proxy config without bind_port") }
        let local = config["local_service_address"]?.stringValue ?? ""
        guard let (host, port) = Self.hostPort(local) else {
            throw Invalid(description: "invalid local_service_address \"\(local)\" (host:port)")
        }
        var listener = PublicListenerConfig(bindAddress: bindAddress, bindPort: bindPort, localServiceHost: host, localServicePort: port)
        if let timeout = Self.int(config["local_connect_timeout_ms"]), timeout > 0 { listener.localConnectTimeoutMs = timeout }
        if let timeout = Self.int(config["handshake_timeout_ms"]), timeout > 0 { listener.handshakeTimeoutMs = timeout }
        publicListener = listener
        if let value = config["threads"] {
            guard let threads = Self.int(value), (1...64).contains(threads) else {
                throw Invalid(description: "invalid threads \(value.encoded()) (1 to 64)")
            }
            self.threads = threads
        }
        if let value = config["prometheus_bind_addr"] {
            guard let text = value.stringValue, let (host, port) = Self.hostPort(text),
                  SocketAddress.with(host, port: port, { _, _ in true }) != nil else {
                throw Invalid(description: "invalid prometheus_bind_addr \(value.encoded()) (an IP address and port, e.g. 127.0.0.1:9102)")
            }
            prometheusBindAddress = MetricsAddress(host: host, port: port)
        }
        if case .array(let list)? = body["Upstreams"] {
            for item in list {
                let type = item["DestinationType"]?.stringValue ?? "service"
                guard type == "service" || type.isEmpty, let name = item["DestinationName"]?.stringValue,
                      let port = Self.int(item["LocalBindPort"]) else { continue }
                var upstream = UpstreamConfig(destinationName: name, localBindPort: port)
                if let address = item["LocalBindAddress"]?.stringValue, !address.isEmpty { upstream.localBindAddress = address }
                upstream.datacenter = item["Datacenter"]?.stringValue ?? ""
                if let timeout = Self.int(item["Config"]?["connect_timeout_ms"]), timeout > 0 { upstream.connectTimeoutMs = timeout }
                upstreams.append(upstream)
            }
        }
    }

    static func int(_ value: JSONValue?) -> Int? {
        switch value {
        case .int(let number)?: Int(number)
        case .double(let number)? where number == number.rounded(): Int(number)
        case .string(let text)?: Int(text)
        default: nil
        }
    }

    /// `host:port` or `[v6]:port`.
    public static func hostPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }
}
