// ConnectProxy: `connectd proxy`, the built-in mutual-TLS proxy. It owns its listeners, its TLS
// material and its watches of the agent's endpoints; it talks to the agent only over HTTP, like
// any Consul proxy, and shares no state with the agent process.

import ConnectdCore
import Foundation

/// The agent's HTTP API as the proxy uses it. Calls block a thread of their own, never a
/// cooperative-pool thread, so long-polls cost no concurrency.
public struct AgentClient: Sendable {
    public var host: String
    public var port: Int
    public var token: String

    public init(host: String, port: Int, token: String) {
        self.host = host
        self.port = port
        self.token = token
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
        public var status: Int
        public var description: String
    }

    /// Sends a request; non-200 answers are ``Failure``s carrying the agent's text.
    public func send(_ method: String, _ target: String, body: [UInt8] = [], timeoutSeconds: Int = 30) async throws -> SimpleHTTPResponse {
        let (host, port, token) = (host, port, token)
        let response: SimpleHTTPResponse = try await withCheckedThrowingContinuation { continuation in
            Thread {
                do {
                    let headers = token.isEmpty ? [] : [("X-Consul-Token", token)]
                    continuation.resume(returning: try SimpleHTTPClient.send(method: method, host: host, port: port, target: target,
                                                                             headers: headers, body: body, timeoutSeconds: timeoutSeconds))
                } catch {
                    continuation.resume(throwing: error)
                }
            }.start()
        }
        guard response.status == 200 else {
            throw Failure(status: response.status, description: "\(method) \(target): \(response.status) \(response.text)")
        }
        return response
    }

    /// GET returning the parsed JSON and the response (for its headers).
    public func json(_ target: String, timeoutSeconds: Int = 30) async throws -> (JSONValue, SimpleHTTPResponse) {
        let response = try await send("GET", target, timeoutSeconds: timeoutSeconds)
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
