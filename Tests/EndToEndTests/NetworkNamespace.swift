import Foundation
import TestSupport

/// A network namespace joined to this one by a veth pair on a /24 of its own (as root), for
/// partition tests: `cut()` downs the link, `heal()` brings it back, `remove()` deletes both.
final class NetworkNamespace: @unchecked Sendable {
    let name: String
    let hostSide: String
    /// This namespace's address on the link (etcd listens here too).
    let gateway: String
    /// The namespace's address.
    let address: String
    /// Runs a command inside: `launcher + [command...]`.
    var launcher: [String] { ["/usr/sbin/ip", "netns", "exec", name] }

    /// Nil when namespaces cannot be made here (not root, no `ip`): the caller skips, saying so.
    init?() {
        let tag = String(UInt32.random(in: 0..<0xFFFF), radix: 16)
        let octet = Int.random(in: 10...250)
        name = "cdtest-\(tag)"
        hostSide = "cdh\(tag)"
        gateway = "10.213.\(octet).1"
        address = "10.213.\(octet).2"
        let peer = "cdn\(tag)"
        let steps: [[String]] = [
            ["netns", "add", name],
            ["link", "add", hostSide, "type", "veth", "peer", "name", peer],
            ["link", "set", peer, "netns", name],
            ["addr", "add", gateway + "/24", "dev", hostSide],
            ["link", "set", hostSide, "up"],
            ["netns", "exec", name, "ip", "addr", "add", address + "/24", "dev", peer],
            ["netns", "exec", name, "ip", "link", "set", peer, "up"],
            ["netns", "exec", name, "ip", "link", "set", "lo", "up"],
        ]
        for step in steps {
            guard (try? runProcess("/usr/sbin/ip", step))?.status == 0 else {
                remove()
                return nil
            }
        }
    }

    func cut() { _ = try? runProcess("/usr/sbin/ip", ["link", "set", hostSide, "down"]) }
    func heal() { _ = try? runProcess("/usr/sbin/ip", ["link", "set", hostSide, "up"]) }

    /// One command inside the namespace, to completion.
    func run(_ command: [String]) throws -> CommandResult { try runProcess(launcher[0], Array(launcher.dropFirst()) + command) }

    func remove() {
        _ = try? runProcess("/usr/sbin/ip", ["link", "del", hostSide])
        _ = try? runProcess("/usr/sbin/ip", ["netns", "del", name])
    }
}
