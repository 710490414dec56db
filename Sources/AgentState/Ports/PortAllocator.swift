// Chooses a proxy's bind_port: explicit, kept, or the first free port of the range.

import AgentStore
import ConnectdCore
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
        let fd = socket(SocketAddress.family(of: address), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return true }
        defer { close(fd) }
        guard let result = SocketAddress.with(address, port: port, { bind(fd, $0, $1) }) else { return true }
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
