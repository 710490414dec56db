// The durable part of a managed proxy: its token and port, so neither changes across restarts.

import AgentStore
import ConnectdCore

/// Stored under `proxies/<proxy id>`.
struct ProxyRecord: Sendable, Equatable {
    var proxyServiceID: String
    var targetServiceID: String
    var token: String
    var bindPort: Int
    var source: RegistrationSource

    init(_ proxy: ManagedProxy) {
        proxyServiceID = proxy.proxyServiceID
        targetServiceID = proxy.targetServiceID
        token = proxy.token
        bindPort = proxy.bindPort
        source = proxy.source
    }

    var json: JSONValue {
        .object([
            ("ProxyServiceID", .string(proxyServiceID)), ("TargetServiceID", .string(targetServiceID)),
            ("ProxyToken", .string(token)), ("BindPort", .int(Int64(bindPort))), ("Source", .string(source.rawValue)),
        ])
    }

    init?(json: JSONValue) {
        guard let proxyID = json["ProxyServiceID"]?.stringValue, let target = json["TargetServiceID"]?.stringValue,
              let token = json["ProxyToken"]?.stringValue, !token.isEmpty,
              case .int(let port)? = json["BindPort"], let source = json["Source"]?.stringValue.flatMap(RegistrationSource.init)
        else { return nil }
        proxyServiceID = proxyID
        targetServiceID = target
        self.token = token
        bindPort = Int(port)
        self.source = source
    }
}
