// HealthChecks: runs the agent's health checks (tcp, http, script; ttl checks are updated through
// the API) and writes their results to the CheckBoard. It owns no definitions: it reads them
// from the state and the configuration each round.

import AgentConfig
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Subprocess
import SystemPackage

/// One run of a probe: Consul's status and output.
struct ProbeResult: Sendable, Equatable {
    var status: CheckHealth
    var output: String
}

/// The HTTP clients of the http checks (one verifies certificates, one does not), shared by every check.
final class HTTPProbes: Sendable {
    private let verifying: HTTPClient
    private let skipping: HTTPClient
    /// Consul keeps up to 4 KiB of a check's output.
    static let outputLimit = 4096

    init() {
        func client(verify: Bool) -> HTTPClient {
            var configuration = HTTPClient.Configuration()
            configuration.redirectConfiguration = .follow(max: 10, allowCycles: false)
            configuration.decompression = .disabled
            if !verify {
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.certificateVerification = .none
                configuration.tlsConfiguration = tls
            }
            // Health checks should not keep connections to the services they watch.
            configuration.connectionPool = .init(idleTimeout: .seconds(1))
            return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        }
        verifying = client(verify: true)
        skipping = client(verify: false)
    }

    func shutdown() async {
        try? await verifying.shutdown()
        try? await skipping.shutdown()
    }

    /// 2xx passing, 429 warning, anything else critical (Consul's rule).
    func run(_ probe: CheckDefinition.HTTPProbe, timeout: Duration) async -> ProbeResult {
        var request = HTTPClientRequest(url: probe.url)
        request.method = HTTPMethod(rawValue: probe.method)
        request.headers.add(name: "User-Agent", value: "Consul Health Check")
        request.headers.add(name: "Accept", value: "text/plain, text/*, */*")
        for (name, values) in probe.headers.sorted(by: { $0.key < $1.key }) {
            request.headers.remove(name: name)
            for value in values { request.headers.add(name: name, value: value) }
        }
        let client = probe.tlsSkipVerify ? skipping : verifying
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(Int64(timeout.nanoseconds)))
            var body = try await response.body.collect(upTo: 1 << 20)
            let text = body.readString(length: min(body.readableBytes, Self.outputLimit)) ?? ""
            let code = Int(response.status.code)
            let output = "HTTP \(probe.method) \(probe.url): \(code) \(response.status.reasonPhrase) Output: \(text)"
            let status: CheckHealth = (200..<300).contains(code) ? .passing : code == 429 ? .warning : .critical
            return ProbeResult(status: status, output: output)
        } catch {
            return ProbeResult(status: .critical, output: "\(probe.method) \(probe.url): \(Self.describe(error))")
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return "request timed out"
        }
        return "\(error)"
    }
}

enum TCPProbe {
    /// Passing when `address` accepts a connection within `timeout`.
    static func run(_ address: String, timeout: Duration) async -> ProbeResult {
        guard let (host, port) = ProbeAddress.hostPort(address) else {
            return ProbeResult(status: .critical, output: "invalid address \(address)")
        }
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.nanoseconds(Int64(timeout.nanoseconds)))
                .connect(host: host, port: port).get()
            try? await channel.close()
            return ProbeResult(status: .passing, output: "TCP connect \(address): Success")
        } catch {
            return ProbeResult(status: .critical, output: "dial tcp \(address): \(error)")
        }
    }
}

enum ScriptProbe {
    /// Runs `args` in a session of its own: exit 0 passing, 1 warning, else critical; killed
    /// (with its process group) after `timeout`. stdout and stderr together, up to 4 KiB.
    static func run(_ args: [String], timeout: Duration) async -> ProbeResult {
        guard let command = args.first else { return ProbeResult(status: .critical, output: "no command") }
        var template = Array("/tmp/connectd-check-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { return ProbeResult(status: .critical, output: "cannot capture the output: \(String(cString: strerror(errno)))") }
        unlink(template)
        defer { close(fd) }
        let executable: Executable = command.contains("/") ? .path(FilePath(command)) : .name(command)
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.send(signal: .kill, toProcessGroup: true, allowedDurationToNextStep: .milliseconds(100))]
        let platformOptions = options
        let outcome: ProbeResult? = await withTaskGroup(of: ProbeResult?.self) { group in
            group.addTask {
                do {
                    let result = try await Subprocess.run(
                        executable, arguments: Arguments(Array(args.dropFirst())), platformOptions: platformOptions, input: .none,
                        output: .fileDescriptor(FileDescriptor(rawValue: dup(fd)), closeAfterSpawningProcess: true),
                        error: .fileDescriptor(FileDescriptor(rawValue: dup(fd)), closeAfterSpawningProcess: true))
                    switch result.terminationStatus {
                    case .exited(0): return ProbeResult(status: .passing, output: "")
                    case .exited(1): return ProbeResult(status: .warning, output: "")
                    case .exited(let code): return ProbeResult(status: .critical, output: "exit status \(code)\n")
                    case .signaled(let signal): return ProbeResult(status: .critical, output: "killed by signal \(signal)\n")
                    }
                } catch {
                    return ProbeResult(status: .critical, output: "cannot run \(command): \(error)")
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        var bytes = [UInt8](repeating: 0, count: HTTPProbes.outputLimit)
        let count = pread(fd, &bytes, bytes.count, 0)
        let captured = String(decoding: bytes.prefix(max(0, count)), as: UTF8.self)
        guard var result = outcome else {
            return ProbeResult(status: .critical, output: "Timed out (\(CheckDefinition.format(timeout))) running check\n" + captured)
        }
        result.output = captured + result.output
        return result
    }
}

extension Duration {
    var nanoseconds: Double { Double(components.seconds) * 1e9 + Double(components.attoseconds) / 1e9 }
}
