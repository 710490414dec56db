// A real etcd cluster for tests (a library both the etcd client's and the end-to-end tests use).

import ConnectdCore
import Foundation

/// A real 3-member etcd cluster from Debian's `etcd-server` on free loopback ports, its data in a
/// temporary directory, with short raft timers and pre-vote; every member is stopped by PID.
public final class EtcdCluster: @unchecked Sendable {
    public struct Member {
        public let name: String
        public let clientURL: String
        public let peerURL: String
        public fileprivate(set) var process: Process
        let arguments: [String]
    }

    public let directory: String
    public private(set) var members: [Member] = []

    public var endpoints: [String] { members.map(\.clientURL) }

    public init(size: Int = 3, extraArguments: [String] = []) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("connectd-etcd-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ports = (0..<size).map { _ in (client: Self.port(), peer: Self.port()) }
        let names = (0..<size).map { "m\($0 + 1)" }
        let initial = zip(names, ports).map { "\($0)=http://127.0.0.1:\($1.peer)" }.joined(separator: ",")
        for (name, port) in zip(names, ports) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/etcd")
            let client = "http://127.0.0.1:\(port.client)", peer = "http://127.0.0.1:\(port.peer)"
            let arguments = [
                "--name", name, "--data-dir", directory + "/" + name,
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", URL(fileURLWithPath: directory).lastPathComponent,
                "--heartbeat-interval", "25", "--election-timeout", "250", "--pre-vote",
                "--experimental-watch-progress-notify-interval", "1s", "--logger", "zap", "--log-level", "error",
            ] + extraArguments
            process.arguments = arguments
            FileManager.default.createFile(atPath: directory + "/" + name + ".log", contents: nil)
            let log = FileHandle(forWritingAtPath: directory + "/" + name + ".log")
            process.standardOutput = log
            process.standardError = log
            try process.run()
            members.append(Member(name: name, clientURL: client, peerURL: peer, process: process, arguments: arguments))
        }
        guard waitUntilHealthy(seconds: 20) else {
            let logs = names.map { (try? String(contentsOfFile: directory + "/" + $0 + ".log", encoding: .utf8)) ?? "" }
            stop()
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey:
                "the etcd cluster did not become healthy: " + logs.map { String($0.suffix(600)) }.joined(separator: " | ")])
        }
    }

    private static func port() -> Int { SocketAddress.freeLoopbackPort() ?? Int.random(in: 40000...50000) }

    /// Every running member reports itself healthy (it has a leader).
    public func waitUntilHealthy(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let healthy = members.filter(\.process.isRunning).allSatisfy { member in
                let port = Int(member.clientURL.split(separator: ":").last!)!
                guard let answer = try? SimpleHTTPClient.send(method: "GET", host: "127.0.0.1", port: port, target: "/health",
                                                              timeoutSeconds: 1) else { return false }
                return answer.status == 200 && String(decoding: answer.body, as: UTF8.self).contains("\"true\"")
            }
            if healthy { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    /// Starts a stopped member again on its data (it rejoins the cluster).
    public func restart(_ index: Int) throws {
        guard !members[index].process.isRunning else { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/etcd")
        process.arguments = members[index].arguments
        let log = FileHandle(forWritingAtPath: directory + "/" + members[index].name + ".log")
        log?.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        members[index].process = process
    }

    /// SIGKILL to one member.
    public func kill(_ index: Int) {
        let process = members[index].process
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Stops every member by PID (SIGKILL: the data is thrown away anyway, and a graceful stop
    /// waits for leadership transfers between members that are all stopping) and removes the data.
    public func stop() {
        for member in members where member.process.isRunning { Glibc.kill(member.process.processIdentifier, SIGKILL) }
        for member in members { member.process.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs `body` with a fresh cluster and stops it afterwards, whatever `body` does.
    public static func with<T>(extraArguments: [String] = [], _ body: (EtcdCluster) async throws -> T) async throws -> T {
        let cluster = try EtcdCluster(extraArguments: extraArguments)
        defer { cluster.stop() }
        return try await body(cluster)
    }

    /// Runs etcdctl against the cluster; returns its exit status and output.
    @discardableResult
    public func etcdctl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let result = try runProcess("/usr/bin/etcdctl", ["--endpoints", endpoints.joined(separator: ","), "--dial-timeout", "2s",
                                                         "--command-timeout", "5s"] + arguments,
                                    environment: ["ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"])
        return (result.status, result.output)
    }
}
