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
}
