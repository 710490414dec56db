// Consul's common query parameters: token, wait, index, hash, pretty.

import AgentConfig
import AgentState
import AgentStore
import ConnectdCore

public struct QueryOptions: Sendable, Equatable {
    public var token: String
    public var pretty: Bool
    /// The requested wait, nil when absent.
    public var wait: Duration?
    public var condition: BlockingCondition

    /// The `?index=` of an index-blocking request (0 when none).
    public var blockingIndex: UInt64 {
        if case .index(let index) = condition { return index }
        return 0
    }

    /// Parses the parameters every GET endpoint accepts, with Consul's 400 texts.
    ///
    /// - Parameters:
    ///   - defaultToken: the agent's default token, used when the request carries none.
    ///   - alwaysPretty: `-dev` pretty-prints every response.
    ///   - useHash: hash-blocking endpoints read `hash`; `index` is still validated but ignored there.
    public init(_ request: APIRequest, defaultToken: String = "", alwaysPretty: Bool, useHash: Bool = false) throws(APIError) {
        token = TokenExtraction.token(from: request) ?? defaultToken
        pretty = alwaysPretty || request.hasQuery("pretty")
        wait = nil
        if let text = request.queryValue("wait"), !text.isEmpty {
            guard let nanoseconds = GoDuration.parseNanoseconds(text), nanoseconds >= 0 else {
                throw APIError.badRequest("Invalid wait time")
            }
            wait = .nanoseconds(nanoseconds)
        }
        var index: UInt64 = 0
        if let text = request.queryValue("index"), !text.isEmpty {
            guard let parsed = UInt64(text) else { throw APIError.badRequest("Invalid index") }
            index = parsed
        }
        if useHash {
            let hash = request.queryValue("hash") ?? ""
            condition = hash.isEmpty ? .none : .hash(hash)
        } else {
            condition = index > 0 ? .index(index) : .none
        }
    }
}

extension QueryOptions {
    /// The parameters with the agent's settings: `-dev` prettiness and `acl.tokens.default`.
    public init(_ request: APIRequest, configuration: AgentConfiguration, useHash: Bool = false) throws(APIError) {
        try self.init(request, defaultToken: configuration.acl.defaultToken ?? "", alwaysPretty: configuration.alwaysPretty,
                      useHash: useHash)
    }

    /// Reads only the two settings it needs from the backend's configuration.
    public init(_ request: APIRequest, backend: some AgentBackend, useHash: Bool = false) throws(APIError) {
        let (defaultToken, alwaysPretty) = backend.configuration { ($0.acl.defaultToken ?? "", $0.alwaysPretty) }
        try self.init(request, defaultToken: defaultToken, alwaysPretty: alwaysPretty, useHash: useHash)
    }
}

public enum TokenExtraction {
    /// `?token=`, then `X-Consul-Token`, then `Authorization: Bearer <t>`; nil when none is given.
    public static func token(from request: APIRequest) -> String? {
        if let token = request.queryValue("token"), !token.isEmpty { return token }
        if let token = request.header("x-consul-token"), !token.isEmpty { return token }
        if let authorization = request.header("authorization") {
            let parts = authorization.split(separator: " ", omittingEmptySubsequences: false)
            if parts.count >= 2, parts[0] == "Bearer" {
                let token = parts[1...].joined(separator: " ").split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
                if !token.isEmpty { return token }
            }
        }
        return nil
    }

    /// The request target for logs, with the value of `token=` in any case (`TOKEN=`, `Token=`) replaced by `<hidden>`.
    public static func redactedTarget(path: String, rawQuery: String?) -> String {
        guard let rawQuery, !rawQuery.isEmpty else { return path }
        let redacted = rawQuery.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            let name = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            return PercentDecoding.decode(name, plusIsSpace: true).lowercased() == "token" ? "\(name)=<hidden>" : String(pair)
        }.joined(separator: "&")
        return "\(path)?\(redacted)"
    }
}
