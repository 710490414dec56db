import AgentHTTP
import ConnectdCore
import Foundation
import Testing

/// Consul's HTTP conventions over real loopback HTTP, as recorded in the goldens.
@Suite struct ConventionsTests {
    @Test func wrongMethodIs405WithAllowAndPlainText() async throws {
        try await TestAgent.with { agent in
            let response = try await agent.request("POST", "/v1/agent/services")
            #expect(response.status == 405)
            #expect(response.header("Allow") == "OPTIONS,GET")
            #expect(response.header("Content-Type") == "text/plain; charset=utf-8")
            #expect(response.header("Vary") == "Accept-Encoding")
            #expect(response.text == "method POST not allowed")
            let put = try await agent.request("GET", "/v1/agent/service/register")
            #expect(put.status == 405)
            #expect(put.header("Allow") == "OPTIONS,PUT")
            #expect(put.text == "method GET not allowed")
        }
    }

    @Test func optionsIs200WithAllowAndNoBody() async throws {
        try await TestAgent.with { agent in
            let response = try await agent.request("OPTIONS", "/v1/agent/self")
            #expect(response.status == 200)
            #expect(response.header("Allow") == "OPTIONS,GET")
            #expect(response.body.isEmpty)
            #expect(response.header("Date") != nil)
        }
    }

    @Test func unknownPathIs404() async throws {
        try await TestAgent.with { agent in
            let response = try await agent.request("GET", "/v1/nope")
            #expect(response.status == 404)
        }
    }

    @Test func badWaitAndIndexAreConsul400s() async throws {
        try await TestAgent.with { agent in
            for (target, text) in [("/v1/agent/services?wait=xyz", "Invalid wait time"), ("/v1/agent/services?wait=10", "Invalid wait time"),
                                   ("/v1/agent/services?index=-1", "Invalid index"), ("/v1/agent/service/x?index=abc", "Invalid index")] {
                let response = try await agent.request("GET", target)
                #expect(response.status == 400, "\(target)")
                #expect(response.text == text, "\(target)")
                #expect(response.header("Content-Type") == "text/plain; charset=utf-8")
            }
            for target in ["/v1/agent/services?wait=300000ms", "/v1/agent/services?wait=1m30s", "/v1/agent/services?wait=1.5s&index=0"] {
                #expect(try await agent.request("GET", target).status == 200, "\(target)")
            }
        }
    }

    @Test func jsonIsCompactUnlessPrettyAndIndexIsNeverZero() async throws {
        try await TestAgent.with { agent in
            let compact = try await agent.request("GET", "/v1/agent/services")
            #expect(compact.text == "{}")
            #expect(compact.header("Content-Type") == "application/json")
            #expect(compact.header("X-Consul-Index") == nil, "Consul's /v1/agent/services sends no index")
            let catalog = try await agent.request("GET", "/v1/catalog/services")
            #expect((catalog.header("X-Consul-Index").flatMap { UInt64($0) } ?? 0) >= 1, "an index is never 0")
            let pretty = try await agent.request("GET", "/v1/agent/self?pretty")
            #expect(pretty.text.hasPrefix("{\n    \"Config\": {\n"))
            #expect(pretty.text.hasSuffix("}\n"))
        }
    }

    @Test func devModeIsAlwaysPretty() async throws {
        try await TestAgent.with(dev: true) { agent in
            let text = try await agent.request("GET", "/v1/agent/services").text
            #expect(text == "{}\n")
            let dataDir = agent.agent.configuration().dataDir ?? ""
            #expect(dataDir.hasPrefix("/tmp/connectd-dev-"))
        }
    }

    @Test func oversizedBodiesGetA413NamingTheLimit() async throws {
        try await TestAgent.with(files: ["limits.json": #"{"limits": {"http_max_request_bytes": 2048}}"#]) { agent in
            let body = #"{"Name": "web", "Meta": {"k": ""# + String(repeating: "x", count: 4096) + #""}}"#
            let response = try await agent.request("PUT", "/v1/agent/service/register", body: body)
            #expect(response.status == 413)
            #expect(response.text == "Request body too large: the limit is 2048 bytes (limits.http_max_request_bytes)")
            #expect(try await agent.json("/v1/agent/services") == .object([]))
        }
    }

    @Test func tokenSourcesInConsulOrder() {
        func request(query: [(String, String)] = [], headers: [(String, String)] = []) -> APIRequest {
            APIRequest(method: "GET", path: "/", query: query, headers: headers, body: [])
        }
        #expect(TokenExtraction.token(from: request(query: [("token", "q")], headers: [("x-consul-token", "h")])) == "q")
        #expect(TokenExtraction.token(from: request(query: [("token", "")], headers: [("x-consul-token", "h")])) == "h")
        #expect(TokenExtraction.token(from: request(headers: [("x-consul-token", "h"), ("authorization", "Bearer b")])) == "h")
        #expect(TokenExtraction.token(from: request(headers: [("authorization", "Bearer b extra")])) == "b")
        #expect(TokenExtraction.token(from: request(headers: [("authorization", "bearer b")])) == nil)
        #expect(TokenExtraction.token(from: request(headers: [("authorization", "Basic abc")])) == nil)
        #expect(TokenExtraction.token(from: request()) == nil)
        let options = try? QueryOptions(request(), defaultToken: "default", alwaysPretty: false)
        #expect(options?.token == "default")
    }

    @Test func tokensAreHiddenInLoggedTargets() {
        #expect(TokenExtraction.redactedTarget(path: "/v1/agent/services", rawQuery: "token=secret&pretty") == "/v1/agent/services?token=<hidden>&pretty")
        #expect(TokenExtraction.redactedTarget(path: "/v1/x", rawQuery: nil) == "/v1/x")
        #expect(TokenExtraction.redactedTarget(path: "/v1/x", rawQuery: "TOKEN=a&ToKeN=b&%74oken=c&tokens=d")
                == "/v1/x?TOKEN=<hidden>&ToKeN=<hidden>&%74oken=<hidden>&tokens=d")
    }
}

/// Answers on the fast path never overtake one still being prepared by the async responder or
/// parked on a watch.
@Suite struct PipeliningTests {
    @Test func pipelinedAnswersKeepTheirOrder() async throws {
        try await TestAgent.with { agent in
            let index = try #require(try await agent.request("GET", "/v1/agent/connect/ca/roots").header("X-Consul-Index"))
            // A blocking query (parked ~1 s) or an async-only route first, then two the fast path could answer at once.
            for first in ["/v1/agent/connect/ca/roots?index=\(index)&wait=1s", "/v1/agent/services"] {
                let raw = try await Self.pipeline(port: agent.port, ["GET \(first)", "GET /v1/agent/nosuch", "GET /v1/agent/connect/ca/roots"])
                // Bodies do not end in CRLF, so a status line can follow a body directly.
                let statuses = raw.components(separatedBy: "HTTP/1.1 ").dropFirst().map { "HTTP/1.1 " + $0.prefix { $0 != "\r\n" } }
                #expect(statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found", "HTTP/1.1 200 OK"], "\(raw.prefix(2000))")
            }
        }
    }

    /// Sends `requests` back to back on one connection (the last with `Connection: close`) and
    /// returns everything read until the server closes.
    static func pipeline(port: Int, _ requests: [String]) async throws -> String {
        let text = requests.enumerated().map { offset, line in
            "\(line) HTTP/1.1\r\nHost: x\r\n" + (offset == requests.count - 1 ? "Connection: close\r\n" : "") + "\r\n"
        }.joined()
        return try await send(port: port, text)
    }

    /// Writes `text` as it is and returns everything read until the server closes (or 10 s pass).
    static func send(port: Int, _ text: String) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                do {
                    let fd = try SimpleHTTPClient.connect(host: "127.0.0.1", port: port, timeoutSeconds: 10)
                    defer { close(fd) }
                    let bytes = Array(text.utf8)
                    _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, 0) }
                    var data: [UInt8] = []
                    var chunk = [UInt8](repeating: 0, count: 65536)
                    while true {
                        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
                        if count <= 0 { break }
                        data += chunk[0..<count]
                    }
                    continuation.resume(returning: String(decoding: data, as: UTF8.self))
                } catch {
                    continuation.resume(throwing: error)
                }
            }.start()
        }
    }
}
