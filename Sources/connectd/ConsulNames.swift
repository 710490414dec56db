// Consul-style flag names: `-dev` and `--dev` both work.

import ArgumentParser

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
    func address() throws -> (host: String, port: Int) {
        var text = httpAddr ?? ProcessEnvironment.value("CONSUL_HTTP_ADDR") ?? "127.0.0.1:8500"
        if text.hasPrefix("http://") { text.removeFirst("http://".count) }
        if text.hasPrefix("https://") { throw ValidationError("-http-addr: https is not supported by connectd's CLI yet") }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            throw ValidationError("-http-addr: expected host:port, got \"\(text)\"")
        }
        return (String(text[..<colon]), port)
    }

    func effectiveToken() -> String? {
        token ?? ProcessEnvironment.value("CONSUL_HTTP_TOKEN").flatMap { $0.isEmpty ? nil : $0 }
    }
}
