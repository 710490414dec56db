// ConnectProxy: `connectd proxy`, the built-in mutual-TLS proxy. It owns its listeners, its TLS
// material and its watches of the agent's endpoints; it talks to the agent only over HTTP, like
// any Consul proxy, and shares no state with the agent process.

import AsyncHTTPClient
import ConnectdCore
import NIOCore
import NIOHTTP1

/// The agent's HTTP API as the proxy uses it: kept-alive HTTP/1.1 connections on the proxy's own
/// event loops (no thread per call). Long-polls and short calls (authorize) have separate pools,
/// so an authorize never waits behind the watches, which hold a connection each for minutes.
public struct AgentClient: Sendable {
    public var host: String
    public var port: Int
    public var token: String
    private var transport: AgentTransport?
    /// Told of every call that fails or is refused (for the proxy's metrics).
    private var failed: (@Sendable (Kind) -> Void)?

    public init(host: String, port: Int, token: String) {
        self.host = host
        self.port = port
        self.token = token
        self.transport = nil
    }

    /// The same agent, called through pooled connections on `group`; `shutdown()` them at the end.
    public func connected(on group: any EventLoopGroup) -> AgentClient {
        var client = self
        client.transport = AgentTransport(group: group)
        return client
    }

    /// The same client, telling `failed` of each failed or refused call.
    func reporting(failures failed: @escaping @Sendable (Kind) -> Void) -> AgentClient {
        var client = self
        client.failed = failed
        return client
    }

    /// Closes the pooled connections.
    public func shutdown() async {
        await transport?.shutdown()
    }

    /// `CONSUL_HTTP_ADDR`-style text: `host:port` or `http://host:port`.
    public static func parseAddress(_ text: String) -> (host: String, port: Int)? {
        var rest = Substring(text)
        if rest.hasPrefix("http://") { rest = rest.dropFirst(7) }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
            return nil
        }
        var host = String(rest[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// The agent's status; 0 when it could not be reached.
        public var status: Int
        public var description: String
    }

    /// Which pool a call uses.
    public enum Kind: Sendable {
        /// A blocking query that may stay open for minutes.
        case longPoll
        /// A call answered at once (authorize, a first read).
        case call
    }

    /// Sends a request; non-200 answers are ``Failure``s carrying the agent's text.
    public func send(_ method: String, _ target: String, body: [UInt8] = [], timeoutSeconds: Int = 30,
                     kind: Kind = .call) async throws -> SimpleHTTPResponse {
        let headers = token.isEmpty ? [] : [("X-Consul-Token", token)]
        guard let transport else {
            throw Failure(status: 0, description: "\(method) \(target): the agent client has no connections (call connected(on:) first)")
        }
        let response: SimpleHTTPResponse
        do {
            response = try await transport.send(method, host: host, port: port, target: target, headers: headers, body: body,
                                                timeout: .seconds(Int64(timeoutSeconds)), kind: kind)
        } catch {
            // A watch cancelled at stop is not a failure.
            if !Task.isCancelled { failed?(kind) }
            throw error
        }
        guard response.status == 200 else {
            failed?(kind)
            throw Failure(status: response.status, description: "\(method) \(target): \(response.status) \(response.text)")
        }
        return response
    }

    /// GET returning the parsed JSON and the response (for its headers).
    public func json(_ target: String, timeoutSeconds: Int = 30, kind: Kind = .call) async throws -> (JSONValue, SimpleHTTPResponse) {
        let response = try await send("GET", target, timeoutSeconds: timeoutSeconds, kind: kind)
        return (try JSONParser.parse(response.body), response)
    }

    /// `POST /v1/agent/connect/authorize`.
    public func authorize(target: String, clientURI: String, serial: String) async throws -> (authorized: Bool, reason: String) {
        let body = JSONValue.object([("Target", .string(target)), ("ClientCertURI", .string(clientURI)),
                                     ("ClientCertSerial", .string(serial))])
        let response = try await send("POST", "/v1/agent/connect/authorize", body: Array(body.encoded().utf8), timeoutSeconds: 10)
        let answer = try JSONParser.parse(response.body)
        guard case .bool(let authorized)? = answer["Authorized"] else {
            throw Failure(status: 200, description: "authorize: unexpected answer \(response.text)")
        }
        return (authorized, answer["Reason"]?.stringValue ?? "")
    }
}

/// The two connection pools of an ``AgentClient``.
final class AgentTransport: Sendable {
    private let longPolls: HTTPClient
    private let calls: HTTPClient
    /// Bodies larger than this are refused (a leaf or config answer is a few KiB).
    private static let maxBody = 16 << 20

    init(group: any EventLoopGroup) {
        func client(connections: Int) -> HTTPClient {
            var configuration = HTTPClient.Configuration()
            configuration.httpVersion = .http1Only
            configuration.timeout = .init(connect: .seconds(5))
            configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
            configuration.decompression = .disabled
            // A refused connect fails the call at once (the proxy then serves from what the agent
            // said last) instead of being retried until the call's deadline.
            configuration.connectionPool.retryConnectionEstablishment = false
            return HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
        }
        // One connection per watch (config, leaf, roots, one per upstream, intentions): 64 is
        // far more than a proxy holds; calls are short, a few connections serve many.
        longPolls = client(connections: 64)
        calls = client(connections: 8)
    }

    func send(_ method: String, host: String, port: Int, target: String, headers: [(String, String)], body: [UInt8],
              timeout: TimeAmount, kind: AgentClient.Kind) async throws -> SimpleHTTPResponse {
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        var request = HTTPClientRequest(url: "http://\(authority)\(target)")
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if !body.isEmpty {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let client = kind == .longPoll ? longPolls : calls
        let response: HTTPClientResponse
        var collected: ByteBuffer
        do {
            response = try await client.execute(request, timeout: timeout)
            collected = try await response.body.collect(upTo: Self.maxBody)
        } catch {
            throw AgentClient.Failure(status: 0, description: "\(method) \(target): \(error)")
        }
        let bytes = collected.readBytes(length: collected.readableBytes) ?? []
        return SimpleHTTPResponse(status: Int(response.status.code),
                                  headers: response.headers.map { ($0.name.lowercased(), $0.value) }, body: bytes)
    }

    func shutdown() async {
        try? await longPolls.shutdown()
        try? await calls.shutdown()
    }
}
