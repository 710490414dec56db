import ConnectdCore
import Foundation
@_exported import TestSupport

/// The built `connectd` binary, next to the test bundle in the build directory.
func connectdBinary() -> String {
    let buildDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let candidate = buildDirectory.appendingPathComponent("connectd").path
    if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    // swift-testing may run from inside the .xctest bundle directory.
    return buildDirectory.deletingLastPathComponent().appendingPathComponent("connectd").path
}

/// Runs `connectd args...` to completion and returns its exit status and combined output.
func runConnectd(_ arguments: [String]) throws -> CommandResult {
    try runProcess(connectdBinary(), arguments)
}

/// A running `connectd agent` process; its log is collected so tests can wait for lines.
final class AgentProcess: @unchecked Sendable {
    let process = Process()
    private let logLock = NSLock()
    private var logText = ""
    private(set) var port = 0

    /// Where the API is reached (the agent's client address).
    let host: String

    /// - Parameter launcher: a command the agent runs under (`ip netns exec NS`), and `host` the
    ///   address its API is reached at then.
    init(_ arguments: [String], environment: [String: String] = [:], launcher: [String] = [], host: String = "127.0.0.1") throws {
        self.host = host
        if launcher.isEmpty {
            process.executableURL = URL(fileURLWithPath: connectdBinary())
            process.arguments = ["agent", "-http-port", "0"] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: launcher[0])
            process.arguments = Array(launcher.dropFirst()) + [connectdBinary(), "agent", "-http-port", "0"] + arguments
        }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.logLock.lock()
            self.logText += String(decoding: data, as: UTF8.self)
            self.logLock.unlock()
        }
        try process.run()
        let line = try waitForLog("HTTP API listening", seconds: 30)
        guard let range = line.range(of: #"address=[0-9.]+:([0-9]+)"#, options: .regularExpression),
              let port = Int(line[range].split(separator: ":").last ?? "") else {
            throw SimpleHTTPError(description: "no port in \(line)")
        }
        self.port = port
    }

    var log: String {
        logLock.lock()
        defer { logLock.unlock() }
        return logText
    }

    /// Waits (bounded) for a log line containing `text`; returns it.
    @discardableResult
    func waitForLog(_ text: String, seconds: Double = 20) throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let line = log.split(separator: "\n").first(where: { $0.contains(text) }) { return String(line) }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw SimpleHTTPError(description: "no log line with \"\(text)\" within \(seconds)s; log:\n\(log)")
    }

    func get(_ target: String) throws -> SimpleHTTPResponse {
        try SimpleHTTPClient.send(method: "GET", host: host, port: port, target: target)
    }

    func put(_ target: String, body: String = "") throws -> SimpleHTTPResponse {
        try SimpleHTTPClient.send(method: "PUT", host: host, port: port, target: target, body: Array(body.utf8))
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    func stop(seconds: Double = 20) -> Int32? {
        signal(SIGTERM)
        return waitForExit(seconds: seconds)
    }

    /// Waits (bounded) for the process to exit on its own; SIGKILL and nil after the bound.
    func waitForExit(seconds: Double = 20) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            process.interrupt()
            kill(process.processIdentifier, SIGKILL)
            return nil
        }
        return process.terminationStatus
    }
}

func makeTemporaryDirectory(_ label: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("connectd-e2e-\(label)-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A loopback TCP port that was free a moment ago: for tests that must name a port up front
/// (a restart on the same port, socket activation).
func freeLoopbackPort() -> Int {
    SocketAddress.freeLoopbackPort() ?? Int.random(in: 40000...50000)
}

/// Starts `connectd demo-http -name <name>` on 127.0.0.1:`port` (it answers `hello from <name>`).
func startDemoHTTP(_ name: String, port: Int) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: connectdBinary())
    process.arguments = ["demo-http", "-name", name, "-listen", "127.0.0.1:\(port)"]
    try process.run()
    return process
}
