// A client of etcd v3's JSON gateway over HTTP/1.1 (HTTP/2 would reach etcd's gRPC server, which
// the gateway shares a port with): one POST per unary call with a short deadline, moving to the
// next endpoint on a connection failure, a timeout or a member without a leader; authenticating
// with a user and password and again when etcd forgets the token.

import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Synchronization

public final class EtcdClient: Sendable {
    public struct Settings: Sendable {
        /// Base URLs of the members, e.g. `http://10.0.0.1:2379`.
        public var endpoints: [String]
        public var username: String?
        public var password: String?
        /// The deadline of one attempt at one endpoint.
        public var attemptTimeout: Duration
        /// Answers larger than this are refused.
        public var maxResponseBytes: Int

        public init(endpoints: [String], username: String? = nil, password: String? = nil,
                    attemptTimeout: Duration = .milliseconds(500), maxResponseBytes: Int = 64 << 20) {
            self.endpoints = endpoints
            self.username = username
            self.password = password
            self.attemptTimeout = attemptTimeout
            self.maxResponseBytes = maxResponseBytes
        }
    }

    private struct Session {
        /// Where the next call starts: the endpoint that answered last.
        var preferred = 0
        var token: String?
    }

    /// Told of every unary call: its name (`kv/range`), how long it took over every attempt,
    /// and whether it failed.
    public typealias CallObserver = @Sendable (_ call: String, _ took: Duration, _ failed: Bool) -> Void

    public let settings: Settings
    private let http: HTTPClient
    private let session = Mutex(Session())
    private let logger: Logger
    private let observe: CallObserver?
    private let highestRevision = Atomic<Int64>(0)

    /// The highest store revision any answer carried so far (0: none yet).
    public var latestRevision: Int64 { highestRevision.load(ordering: .relaxed) }

    public init(_ settings: Settings, logger: Logger = Logger(label: "connectd.etcd"), observe: CallObserver? = nil) {
        precondition(!settings.endpoints.isEmpty, "an etcd client needs an endpoint")
        self.settings = settings
        self.observe = observe
        http = Self.makeHTTP(connectTimeout: settings.attemptTimeout, readTimeout: nil)
        self.logger = logger
    }

    /// An HTTP/1.1-only client (HTTP/2 would reach etcd's gRPC server); `readTimeout` closes a
    /// connection that brings no bytes for that long.
    static func makeHTTP(connectTimeout: Duration, readTimeout: Duration?) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.httpVersion = .http1Only
        configuration.timeout = .init(connect: .milliseconds(connectTimeout.milliseconds),
                                      read: readTimeout.map { .milliseconds($0.milliseconds) })
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the client's connections; calls after it fail.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    // MARK: Calls

    public func range(_ request: RangeRequest) async throws(EtcdError) -> RangeResponse {
        try await call("/v3/kv/range", request)
    }

    public func put(_ request: PutRequest) async throws(EtcdError) -> PutResponse {
        try await call("/v3/kv/put", request)
    }

    public func deleteRange(_ request: DeleteRangeRequest) async throws(EtcdError) -> DeleteRangeResponse {
        try await call("/v3/kv/deleterange", request)
    }

    public func txn(_ request: TxnRequest) async throws(EtcdError) -> TxnResponse {
        try await call("/v3/kv/txn", request)
    }

    public func grantLease(_ request: LeaseGrantRequest) async throws(EtcdError) -> LeaseGrantResponse {
        try await call("/v3/lease/grant", request)
    }

    public func keepAlive(_ request: LeaseKeepAliveRequest) async throws(EtcdError) -> LeaseKeepAliveResponse {
        try await call("/v3/lease/keepalive", request)
    }

    public func revokeLease(_ request: LeaseRevokeRequest) async throws(EtcdError) -> LeaseRevokeResponse {
        try await call("/v3/lease/revoke", request)
    }

    /// The status of every member, each asked directly (not failing over): health, leader, revision.
    public func memberStatuses() async -> [(endpoint: String, status: Result<StatusResponse, EtcdError>)] {
        var results: [(String, Result<StatusResponse, EtcdError>)] = []
        for endpoint in settings.endpoints {
            do throws(EtcdError) {
                let body = try Self.encoded(StatusRequest(), for: "/v3/maintenance/status")
                let response: StatusResponse = try await send("/v3/maintenance/status", body, token: try await currentToken(), only: endpoint)
                results.append((endpoint, .success(response)))
            } catch {
                results.append((endpoint, .failure(error)))
            }
        }
        return results
    }

    /// One call: tries every endpoint once, from the one that answered last; authenticates first
    /// when a user is set and no token is held, and once more when etcd rejects the token.
    func call<Request: Encodable & Sendable, Response: Decodable>(_ path: String, _ request: Request) async throws(EtcdError) -> Response {
        let started = ContinuousClock.now
        do {
            let response: Response = try await attempt(path, request)
            if let revision = (response as? any CarriesResponseHeader)?.header?.revision?.value {
                highestRevision.max(revision)
            }
            observe?(String(path.dropFirst(4)), ContinuousClock.now - started, false)
            return response
        } catch {
            observe?(String(path.dropFirst(4)), ContinuousClock.now - started, true)
            throw error
        }
    }

    private func attempt<Request: Encodable & Sendable, Response: Decodable>(_ path: String, _ request: Request) async throws(EtcdError) -> Response {
        let body = try Self.encoded(request, for: path)
        var reauthenticated = false
        while true {
            do {
                let token = try await currentToken()
                return try await send(path, body, token: token)
            } catch where error.needsAuthentication && settings.username != nil && !reauthenticated {
                reauthenticated = true
                session.withLock { $0.token = nil }
            }
        }
    }

    func currentToken() async throws(EtcdError) -> String? {
        guard let username = settings.username else { return nil }
        if let token = session.withLock({ $0.token }) { return token }
        let body = try Self.encoded(AuthenticateRequest(name: username, password: settings.password ?? ""), for: "/v3/auth/authenticate")
        let answer: AuthenticateResponse = try await send("/v3/auth/authenticate", body, token: nil)
        guard let token = answer.token, !token.isEmpty else {
            throw .malformed(path: "/v3/auth/authenticate", reason: "no token in the answer")
        }
        session.withLock { $0.token = token }
        return token
    }

    static func encoded(_ request: some Encodable, for path: String) throws(EtcdError) -> ByteBuffer {
        do {
            return ByteBuffer(data: try JSONEncoder().encode(request))
        } catch {
            throw .malformed(path: path, reason: "cannot encode the request: \(error)")
        }
    }

    /// Every endpoint once with its index, starting with the one that answered last.
    func rotation() -> [(index: Int, endpoint: String)] {
        let endpoints = settings.endpoints
        let start = session.withLock { $0.preferred }
        return endpoints.indices.map { offset in
            let index = (start + offset) % endpoints.count
            return (index, endpoints[index])
        }
    }

    /// A JSON POST of `body` to `path` on `endpoint`, with the auth token when there is one.
    static func post(_ endpoint: String, _ path: String, _ body: ByteBuffer, token: String?) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: endpoint + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: token) }
        request.body = .bytes(body)
        return request
    }

    /// Posts `body` to each endpoint in turn until one answers; decodes its answer or its error.
    private func send<Response: Decodable>(_ path: String, _ body: ByteBuffer, token: String?,
                                           only: String? = nil) async throws(EtcdError) -> Response {
        var attempts: [String] = []
        for (index, endpoint) in rotation() where only == nil || only == endpoint {
            let request = Self.post(endpoint, path, body, token: token)
            let status: Int
            let bytes: ByteBuffer
            do {
                let deadline = NIODeadline.now() + .milliseconds(settings.attemptTimeout.milliseconds)
                let response = try await http.execute(request, deadline: deadline)
                status = Int(response.status.code)
                bytes = try await response.body.collect(upTo: settings.maxResponseBytes)
            } catch {
                attempts.append("\(endpoint): \(Self.describe(error))")
                continue
            }
            if (200..<300).contains(status) {
                if only == nil { session.withLock { $0.preferred = index } }
                do {
                    return try JSONDecoder().decode(Response.self, from: Data(buffer: bytes))
                } catch {
                    throw .malformed(path: path, reason: "\(error)")
                }
            }
            let failure = (try? JSONDecoder().decode(GatewayErrorBody.self, from: Data(buffer: bytes)))
            let error = EtcdError.gateway(status: status, code: failure?.code,
                                          message: failure?.message ?? failure?.error ?? String(buffer: bytes))
            guard error.triesAnotherEndpoint else { throw error }
            attempts.append("\(endpoint): \(error)")
        }
        logger.debug("no etcd endpoint answered", metadata: ["path": "\(path)", "attempts": "\(attempts)"])
        throw .unavailable(attempts)
    }

    private static func describe(_ error: any Error) -> String {
        if let client = error as? HTTPClientError, client == .deadlineExceeded { return "no answer in time" }
        return String(describing: error)
    }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

extension Atomic where Value == Int64 {
    /// Raises the value to `candidate` if that is higher.
    func max(_ candidate: Int64) {
        var current = load(ordering: .relaxed)
        while candidate > current {
            let (exchanged, original) = compareExchange(expected: current, desired: candidate, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}
