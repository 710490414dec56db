// IPv4/IPv6 literal → sockaddr, for the few places that use raw sockets (port probes, the tiny client).

#if canImport(Glibc)
import Glibc
#endif

public enum SocketAddress {
    /// The address family of an IP literal (brackets allowed for IPv6).
    public static func family(of address: String) -> Int32 {
        address.contains(":") ? AF_INET6 : AF_INET
    }

    /// Calls `body` with a sockaddr for `address:port`; nil when `address` is not an IP literal.
    public static func with<T>(_ address: String, port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T? {
        let literal = address.hasPrefix("[") && address.hasSuffix("]") ? String(address.dropFirst().dropLast()) : address
        if family(of: literal) == AF_INET6 {
            var storage = sockaddr_in6()
            storage.sin6_family = sa_family_t(AF_INET6)
            storage.sin6_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
            guard inet_pton(AF_INET6, literal, &storage.sin6_addr) == 1 else { return nil }
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        var storage = sockaddr_in()
        storage.sin_family = sa_family_t(AF_INET)
        storage.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        guard inet_pton(AF_INET, literal, &storage.sin_addr) == 1 else { return nil }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    /// A loopback TCP port that was free a moment ago (bound to port 0, then closed): for what
    /// must name its port up front (tests, an etcd member, a restart on the same port).
    public static func freeLoopbackPort() -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
    }
}
