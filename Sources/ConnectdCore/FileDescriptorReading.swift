// Reading a whole file descriptor, bounded: the one read loop the config loader and the state
// store share.

#if canImport(Glibc)
import Glibc
#endif

public enum FileDescriptorReading {
    /// Reads `fd` to its end, but never more than `limit` + 1 bytes, so a caller can tell a file
    /// over its limit. Throws the `errno` of a failed read (EINTR is retried).
    public static func readAll(_ fd: Int32, limit: Int) throws(Errno) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while bytes.count <= limit {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Errno(code: errno)
            }
            if count == 0 { break }
            bytes += chunk[0..<count]
        }
        return bytes
    }

    /// A failed system call's `errno`, with its text.
    public struct Errno: Error, Sendable, CustomStringConvertible {
        public var code: Int32
        public var description: String { String(cString: strerror(code)) }
    }
}
