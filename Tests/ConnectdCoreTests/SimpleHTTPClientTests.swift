import Testing
@testable import ConnectdCore

/// Reading a response: Content-Length bodies are cut at the length, chunked ones joined.
struct SimpleHTTPClientTests {
    func parse(_ text: String) throws -> SimpleHTTPResponse { try SimpleHTTPClient.parse(Array(text.utf8)) }

    @Test func aChunkedBodyIsJoined() throws {
        let response = try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\na;ext=1\r\n:[1,2,3]}\n\r\n0\r\n\r\n")
        #expect(response.status == 200)
        #expect(response.text == "{\"a\":[1,2,3]}\n")
    }

    @Test func aLengthCutsTheBody() throws {
        #expect(try parse("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nokEXTRA").text == "ok")
    }

    @Test func aTruncatedChunkIsAnError() {
        #expect(throws: SimpleHTTPError.self) { try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort") }
        #expect(throws: SimpleHTTPError.self) { try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") }
    }
}
