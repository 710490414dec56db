import Foundation
import Glibc

/// A fake systemd: a datagram socket for NOTIFY_SOCKET that records every message with its time.
final class NotifyListener: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [(Date, String)] = []

    /// - Parameter draining: false makes a systemd that never reads: with a small receive buffer
    ///   the socket fills after a few messages and a blocking sender would wait forever.
    init(draining: Bool = true) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString).sock").path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        guard draining else {
            var size: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            return
        }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let thread = Thread { [weak self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while let self {
                let count = buffer.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress!, $0.count, 0) }
                if count > 0 {
                    let text = String(decoding: buffer[0..<count], as: UTF8.self)
                    self.lock.lock()
                    self.received.append((Date(), text))
                    self.lock.unlock()
                } else if count < 0 && errno != EAGAIN && errno != EINTR {
                    return
                }
            }
        }
        thread.start()
    }

    deinit {
        close(fd)
        unlink(path)
    }

    var messages: [(Date, String)] {
        lock.lock()
        defer { lock.unlock() }
        return received
    }

    /// Waits (bounded) for a message containing `text`; returns it.
    func waitFor(_ text: String, after: Date = .distantPast, seconds: Double = 15) -> (Date, String)? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let found = messages.first(where: { $0.0 >= after && $0.1.contains(text) }) { return found }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return nil
    }
}
