import ConnectdCore
import Foundation

/// One client TCP connection driven byte by byte, for tests of what the server does with
/// connections (timeouts, caps, framing) rather than with requests.
final class RawConnection {
    let fd: Int32

    init(port: Int, source: String? = nil, timeoutSeconds: Int = 10) throws {
        fd = try SimpleHTTPClient.connect(host: "127.0.0.1", port: port, timeoutSeconds: timeoutSeconds, source: source)
    }

    deinit { close(fd) }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads one response with a Content-Length body (or what arrives before the server closes).
    func readResponse() -> String {
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let text = Self.complete(data) { return text }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if count <= 0 { return String(decoding: data, as: UTF8.self) }
            data += chunk[0..<count]
        }
    }

    /// Everything read until the server closes, and how long that took; nil seconds when the
    /// receive timeout passed first.
    func readUntilClosed() -> (text: String, seconds: Double?) {
        let started = Date()
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return (String(decoding: data, as: UTF8.self), nil) }
            if count <= 0 { return (String(decoding: data, as: UTF8.self), Date().timeIntervalSince(started)) }
            data += chunk[0..<count]
        }
    }

    /// Whether the server has closed the connection (a read sees the end at once).
    func isClosedByServer(within seconds: Double = 1) -> Bool {
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, Int32(seconds * 1000)) == 1 else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK)) <= 0
    }

    private static func complete(_ data: [UInt8]) -> String? {
        let text = String(decoding: data, as: UTF8.self)
        guard let end = text.range(of: "\r\n\r\n") else { return nil }
        let head = text[..<end.lowerBound].lowercased()
        let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
        return text.utf8.count - text[..<end.upperBound].utf8.count >= length ? text : nil
    }
}

/// Runs a blocking body on its own thread, so the agent's loops in this process keep running.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }.start()
    }
}
