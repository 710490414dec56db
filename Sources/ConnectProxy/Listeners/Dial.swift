// How the proxy dials: an IP address is connected to as it is; only a name goes through NIO's
// resolver, which runs getaddrinfo on a libdispatch thread (a thread hop per connection).

import NIOCore
import NIOPosix

extension ClientBootstrap {
    func connect(toHost host: String, port: Int) -> EventLoopFuture<any Channel> {
        if let address = try? SocketAddress(ipAddress: host, port: port) { return connect(to: address) }
        return connect(host: host, port: port)
    }
}
