// Consul-style flag names: `-dev` and `--dev` both work.

import ArgumentParser
import ConnectProxy

extension NameSpecification {
    /// `-name` and `--name`.
    static func consul(_ name: String) -> NameSpecification {
        [.customLong(name, withSingleDash: true), .customLong(name)]
    }
}

/// `-http-addr` and `-token` for subcommands that talk to a running agent, like Consul's CLI.
struct AgentClientOptions: ParsableArguments {
    @Option(name: .consul("http-addr"), help: "Agent HTTP address (default: $CONSUL_HTTP_ADDR or 127.0.0.1:8500).")
    var httpAddr: String?

    @Option(name: .consul("token"), help: "ACL token (default: $CONSUL_HTTP_TOKEN).")
    var token: String?

    /// Host and port from the flag, the environment, or the default; `http://` is accepted.
    func address() throws -> (host: String, port: Int) { try Self.address(flag: httpAddr) }

    /// The agent address from `-http-addr`, else `$CONSUL_HTTP_ADDR`, else 127.0.0.1:8500.
    static func address(flag: String?) throws -> (host: String, port: Int) {
        let text = flag ?? ProcessEnvironment.value("CONSUL_HTTP_ADDR") ?? "127.0.0.1:8500"
        if text.hasPrefix("https://") { throw ValidationError("-http-addr: https is not supported by connectd's CLI yet") }
        guard let address = AgentClient.parseAddress(text) else {
            throw ValidationError("-http-addr: expected host:port, got \"\(text)\"")
        }
        return address
    }

    func effectiveToken() -> String? {
        token ?? ProcessEnvironment.value("CONSUL_HTTP_TOKEN").flatMap { $0.isEmpty ? nil : $0 }
    }
}
