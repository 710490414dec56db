// `connectd demo-http`: the demo's stand-in service (see DemoHTTPServer).

import ArgumentParser
import ConnectProxy
import UnixSignals

struct DemoHTTPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-http",
        abstract: "Serve \"hello from <name>\" over HTTP (a stand-in service for the demo and tests).")

    @Option(name: .consul("name"), help: "The name in the answer.")
    var name: String

    @Option(name: .consul("listen"), help: "host:port to serve on.")
    var listen: String = "127.0.0.1:8080"

    func run() async throws {
        guard let (host, port) = ProxyConfig.hostPort(listen) else { throw ValidationError("-listen: expected host:port, got \"\(listen)\"") }
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        try await DemoHTTPServer.run(name: name, host: host, port: port) {
            for await _ in signals { return }
        }
    }
}
