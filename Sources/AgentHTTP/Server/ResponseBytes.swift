// The HTTP/1.1 bytes of an answer: status line, headers and body in one buffer, one write.

import CompressNIO
import HTTPTypes
import NIOCore
import NIOHTTP1

enum ResponseBytes {
    /// Status line, headers (the response's own, then `Vary`, `Content-Length`, `Date` and, when
    /// closing, `Connection: close`, as Consul's server writes them) and body.
    static func encode(_ response: APIResponse, gzip: Bool, date: String, close: Bool,
                       allocator: ByteBufferAllocator) -> ByteBuffer {
        let body = gzip ? gzipped(response.body) : nil
        let bodyCount = body?.readableBytes ?? response.body.count
        var buffer = allocator.buffer(capacity: 256 + bodyCount + response.headers.count * 48)
        let status = HTTPResponseStatus(statusCode: response.status)
        buffer.writeString("HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n")
        if body != nil { buffer.writeString("Content-Encoding: gzip\r\n") }
        for (name, value) in response.headers where HTTPField.Name(name) != nil {
            header(name, value, into: &buffer)
        }
        buffer.writeString("Vary: Accept-Encoding\r\nContent-Length: \(bodyCount)\r\nDate: \(date)\r\n")
        if close { buffer.writeString("Connection: close\r\n") }
        buffer.writeString("\r\n")
        if var body {
            buffer.writeBuffer(&body)
        } else {
            buffer.writeBytes(response.body)
        }
        return buffer
    }

    /// The interim answer to `Expect: 100-continue`.
    static func `continue`(allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")
    }

    /// `bytes` gzip-compressed; nil when empty or when compression fails (then sent as is).
    static func gzipped(_ bytes: [UInt8]) -> ByteBuffer? {
        guard !bytes.isEmpty else { return nil }
        var buffer = ByteBuffer(bytes: bytes)
        return try? buffer.compress(with: .gzip())
    }

    private static func header(_ name: String, _ value: String, into buffer: inout ByteBuffer) {
        buffer.writeString(name)
        buffer.writeString(": ")
        // A value never carries a line break onto the wire.
        if value.utf8.contains(where: { $0 == 13 || $0 == 10 }) {
            buffer.writeString(String(value.unicodeScalars.filter { $0 != "\r" && $0 != "\n" }))
        } else {
            buffer.writeString(value)
        }
        buffer.writeString("\r\n")
    }
}
