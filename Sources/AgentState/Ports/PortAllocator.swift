// Chooses a proxy's bind_port: explicit, kept, or the first free port of the range.

#if canImport(Glibc)
import Glibc
#endif

/// Answers "could a proxy bind this port now?".
public protocol PortProbe: Sendable {
    func isFree(port: Int) -> Bool
}

/// Tries to bind a TCP socket on `address:port` and closes it at once.
public struct BindPortProbe: PortProbe {
    public var address: String

    public init(address: String) { self.address = address }

    public func isFree(port: Int) -> Bool {
        let isIPv6 = address.contains(":")
        let fd = socket(isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return true }
        defer { close(fd) }
        var result: Int32
        if isIPv6 {
            var socketAddress = sockaddr_in6()
            socketAddress.sin6_family = sa_family_t(AF_INET6)
            socketAddress.sin6_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET6, address, &socketAddress.sin6_addr)
            result = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, address, &socketAddress.sin_addr)
            result = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        return result == 0 || errno != EADDRINUSE
    }
}

public struct PortAllocationError: Error, Sendable, CustomStringConvertible {
    public var proxyID: String
    public var range: ClosedRange<Int>?
    public var description: String {
        guard let range else {
            return "no port provided for proxy bind_port and automatic allocation is disabled (ports.proxy_min_port/proxy_max_port are 0); set config.bind_port for \(proxyID)"
        }
        return "no port provided for proxy bind_port and none left in the allocated range [\(range.lowerBound), \(range.upperBound)] for \(proxyID)"
    }
}

/// Port choice for one proxy, in Consul's order but checking what Consul did not:
/// 1. an explicit `config.bind_port` is used as is;
/// 2. else the port this proxy ID already had (reload, restart) is kept;
/// 3. else the lowest port of the range that no other proxy uses and that is free on the host.
public struct PortAllocator: Sendable {
    public var range: ClosedRange<Int>?
    public var probe: any PortProbe

    public init(range: ClosedRange<Int>?, probe: any PortProbe) {
        self.range = range
        self.probe = probe
    }

    public func choose(proxyID: String, explicit: Int?, previous: Int?, taken: Set<Int>) throws(PortAllocationError) -> Int {
        if let explicit { return explicit }
        if let previous, !taken.contains(previous) { return previous }
        guard let range else { throw PortAllocationError(proxyID: proxyID, range: nil) }
        for port in range where !taken.contains(port) && probe.isFree(port: port) {
            return port
        }
        throw PortAllocationError(proxyID: proxyID, range: range)
    }
}
