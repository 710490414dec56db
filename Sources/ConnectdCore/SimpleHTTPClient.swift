// A minimal blocking HTTP/1.1 client for talking to a local agent (CLI subcommands, tests).
// One request per connection (`Connection: close`); IPv4/IPv6 literals or `localhost`.

#if canImport(Glibc)
import Glibc
#endif

public struct SimpleHTTPResponse: Sendable {
    public var status: Int
    /// Header names lower-cased, in order.
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.0 == lowered }?.1
    }

    public var text: String { String(decoding: body, as: UTF8.self) }
}

public struct SimpleHTTPError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

public enum SimpleHTTPClient {
    /// Sends one request and reads the whole response. Blocks the calling thread.
    public static func send(
        method: String, host: String, port: Int, target: String, headers: [(String, String)] = [],
        body: [UInt8] = [], timeoutSeconds: Int = 30, source: String? = nil
    ) throws(SimpleHTTPError) -> SimpleHTTPResponse {
        let fd = try connect(host: host, port: port, timeoutSeconds: timeoutSeconds, source: source)
        defer { close(fd) }
        var request = "\(method) \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "PUT" || method == "POST" { request += "Content-Length: \(body.count)\r\n" }
        request += "\r\n"
        try writeAll(fd, Array(request.utf8) + body)
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SimpleHTTPError(description: errno == EAGAIN ? "timed out waiting for \(host):\(port)" : "read failed: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            data += chunk[0..<count]
        }
        return try parse(data)
    }

    /// A connected TCP socket (blocking, with send and receive timeouts), from `source` when
    /// given (a local address to bind first, e.g. 127.0.0.2 to appear as another loopback client).
    public static func connect(host: String, port: Int, timeoutSeconds: Int, source: String? = nil) throws(SimpleHTTPError) -> Int32 {
        let address = host == "localhost" ? "127.0.0.1" : host.trimmingBrackets
        let fd = socket(SocketAddress.family(of: address), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SimpleHTTPError(description: "socket: \(String(cString: strerror(errno)))") }
        if let source {
            guard SocketAddress.with(source, port: 0, { Glibc.bind(fd, $0, $1) }) == 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw SimpleHTTPError(description: "cannot bind to \(source): \(reason)")
            }
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let result = SocketAddress.with(address, port: port, { Glibc.connect(fd, $0, $1) }) else {
            close(fd)
            throw SimpleHTTPError(description: "invalid address \(host) (use an IP address or localhost)")
        }
        guard result == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw SimpleHTTPError(description: "cannot connect to \(host):\(port): \(reason)")
        }
        return fd
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SimpleHTTPError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw SimpleHTTPError(description: "write failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    static func parse(_ data: [UInt8]) throws(SimpleHTTPError) -> SimpleHTTPResponse {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let headerEnd = (0..<max(0, data.count - 3)).first(where: { Array(data[$0..<$0 + 4]) == separator }) else {
            throw SimpleHTTPError(description: "incomplete HTTP response (\(data.count) bytes)")
        }
        let head = String(decoding: data[..<headerEnd], as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let statusParts = head[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw SimpleHTTPError(description: "bad status line: \(head[0])")
        }
        let headers = head.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: " "))
        }
        var body = Array(data[(headerEnd + 4)...])
        if headers.contains(where: { $0.0 == "transfer-encoding" && $0.1.lowercased().contains("chunked") }) {
            body = try dechunked(body)
        } else if let length = headers.first(where: { $0.0 == "content-length" }).flatMap({ Int($0.1) }), length < body.count {
            body = Array(body[..<length])
        }
        return SimpleHTTPResponse(status: status, headers: headers, body: body)
    }

    /// The body of a chunked response (`<hex size>[;ext]\r\n<bytes>\r\n` … `0\r\n\r\n`).
    static func dechunked(_ bytes: [UInt8]) throws(SimpleHTTPError) -> [UInt8] {
        var result: [UInt8] = []
        var index = 0
        while true {
            guard let lineEnd = (index..<max(index, bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }) else {
                throw SimpleHTTPError(description: "incomplete chunked body")
            }
            let sizeText = String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: " "), radix: 16), size >= 0 else {
                throw SimpleHTTPError(description: "bad chunk size \"\(sizeText)\"")
            }
            if size == 0 { return result }
            let start = lineEnd + 2
            guard start + size <= bytes.count else { throw SimpleHTTPError(description: "incomplete chunked body") }
            result += bytes[start..<start + size]
            index = start + size + 2
        }
    }
}

extension String {
    var trimmingBrackets: String {
        hasPrefix("[") && hasSuffix("]") ? String(dropFirst().dropLast()) : self
    }

    func trimmingCharacters(in set: String) -> String {
        var result = Substring(self)
        while let first = result.first, set.contains(first) { result = result.dropFirst() }
        while let last = result.last, set.contains(last) { result = result.dropLast() }
        return String(result)
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String { String(self).trimmingCharacters(in: set) }
}
