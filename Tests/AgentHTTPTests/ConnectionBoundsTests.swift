import AgentConfig
import ConnectdCore
import Foundation
import Testing

/// The server's bounds on connections: the read and idle clocks, the per-client cap, and what
/// it answers to requests it cannot read.
@Suite struct ConnectionBoundsTests {
    static let shortClocks = ["limits.json": #"{"limits": {"http_read_timeout": "600ms", "http_idle_timeout": "800ms"}}"#]

    /// A client that sends its headers a line at a time (slowloris) is closed after the read
    /// timeout without an answer, however steadily it trickles; one that sends nothing too.
    @Test func slowHeadersAreClosedAfterTheReadTimeout() async throws {
        try await TestAgent.with(files: Self.shortClocks) { agent in
            let port = agent.port
            let (trickled, silent) = try await onThread { () -> ((String, Double?), Double?) in
                let slow = try RawConnection(port: port)
                let quiet = try RawConnection(port: port)
                slow.send("GET /v1/agent/self HTTP/1.1\r\nHost: x\r\n")
                var closed = false
                for index in 0..<30 where !closed {
                    Thread.sleep(forTimeInterval: 0.1)
                    slow.send("X-Slow-\(index): y\r\n")
                    closed = slow.isClosedByServer(within: 0)
                }
                return (slow.readUntilClosed(), quiet.readUntilClosed().seconds)
            }
            #expect(trickled.0.isEmpty, "no answer to an incomplete request: \(trickled.0)")
            #expect(trickled.1 != nil, "the trickling client was not closed within 3 s")
            #expect(silent != nil && silent! < 2, "a silent connection is closed by the read timeout")
        }
    }

    /// A kept-alive connection with nothing in it is closed after the idle timeout; a blocking
    /// query parked longer than that is not idle and gets its answer.
    @Test func idleConnectionsCloseButParkedQueriesDoNot() async throws {
        try await TestAgent.with(files: Self.shortClocks) { agent in
            let port = agent.port
            let index = try #require(try await agent.request("GET", "/v1/agent/connect/ca/roots").header("X-Consul-Index"))
            let (first, idleClosedAfter, parked) = try await onThread { () -> (String, Double?, String) in
                let kept = try RawConnection(port: port)
                kept.send("GET /v1/agent/self HTTP/1.1\r\nHost: x\r\n\r\n")
                let first = kept.readResponse()
                let idle = kept.readUntilClosed().seconds
                let waiting = try RawConnection(port: port)
                waiting.send("GET /v1/agent/connect/ca/roots?index=\(index)&wait=2s HTTP/1.1\r\nHost: x\r\n\r\n")
                return (first, idle, waiting.readResponse())
            }
            #expect(first.hasPrefix("HTTP/1.1 200 OK"))
            #expect(idleClosedAfter != nil && idleClosedAfter! < 3, "the idle connection stayed open")
            #expect(parked.hasPrefix("HTTP/1.1 200 OK"), "a query parked past the idle timeout was cut: \(parked.prefix(200))")
        }
    }

    /// Over `limits.http_max_conns_per_client` a new connection from the same address is closed
    /// at once; another address is served, and a freed slot can be used again.
    @Test func connectionsOverThePerClientCapAreClosedAtOnce() async throws {
        try await TestAgent.with(files: ["limits.json": #"{"limits": {"http_max_conns_per_client": 5}}"#]) { agent in
            let port = agent.port
            let outcome = try await onThread { () -> (Bool, Bool, String, Bool) in
                var held = try (0..<5).map { _ in try RawConnection(port: port) }
                for connection in held {
                    connection.send("GET /v1/agent/self HTTP/1.1\r\nHost: x\r\n\r\n")
                    _ = connection.readResponse()
                }
                let refused = try RawConnection(port: port)
                let refusedClosed = refused.isClosedByServer(within: 2)
                let heldStillOpen = !held[0].isClosedByServer(within: 0.1)
                let other = try SimpleHTTPClient.send(method: "GET", host: "127.0.0.1", port: port, target: "/v1/agent/self",
                                                      source: "127.0.0.2")
                held.removeFirst()
                Thread.sleep(forTimeInterval: 0.2)
                let again = try RawConnection(port: port)
                again.send("GET /v1/agent/self HTTP/1.1\r\nHost: x\r\n\r\n")
                return (refusedClosed, heldStillOpen, "\(other.status)", again.readResponse().hasPrefix("HTTP/1.1 200 OK"))
            }
            #expect(outcome.0, "the sixth connection from 127.0.0.1 was not closed")
            #expect(outcome.1, "a connection within the cap was closed")
            #expect(outcome.2 == "200", "127.0.0.2 is another client")
            #expect(outcome.3, "a freed slot is usable again")
        }
    }

    /// `Expect: 100-continue` gets the interim answer; headers over the decoder's limit get 431,
    /// a request line that is not HTTP gets 400; each names what was wrong.
    @Test func continueAndUnreadableRequests() async throws {
        try await TestAgent.with { agent in
            let port = agent.port
            let (continued, huge, garbage) = try await onThread { () -> (String, String, String) in
                let body = #"{"Name": "web", "Port": 80}"#
                let expecting = try RawConnection(port: port)
                expecting.send("PUT /v1/agent/service/register HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
                var interim = [UInt8](repeating: 0, count: 25)
                let count = recv(expecting.fd, &interim, interim.count, 0)
                expecting.send(body)
                let continued = String(decoding: interim[0..<max(0, count)], as: UTF8.self) + expecting.readResponse()
                let large = try RawConnection(port: port)
                large.send("GET /v1/agent/self HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 100_000) + "\r\n\r\n")
                let bad = try RawConnection(port: port)
                bad.send("NOT HTTP AT ALL\r\n\r\n")
                return (continued, large.readUntilClosed().text, bad.readUntilClosed().text)
            }
            #expect(continued.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"), "\(continued)")
            #expect(huge.hasPrefix("HTTP/1.1 431 "), "\(huge.prefix(300))")
            #expect(garbage.hasPrefix("HTTP/1.1 400 Bad Request"), "\(garbage)")
            #expect(garbage.contains("Bad request: malformed request"), "\(garbage)")
            #expect(try await agent.json("/v1/agent/services")["web"] != nil)
        }
    }
}
