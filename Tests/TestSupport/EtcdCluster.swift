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

    /// The endpoints as reached at `host` (one of `alsoListenOn`).
    public func endpoints(at host: String) -> [String] {
        members.map { $0.clientURL.replacingOccurrences(of: "127.0.0.1", with: host) }
    }

    /// - Parameters:
    ///   - timers: raft heartbeat and election timeout in ms.
    ///   - onTmpfs: data under /dev/shm (when there is one), so fsyncs cost nothing.
    /// - Parameter alsoListenOn: more addresses for the client port (a namespace's gateway
    ///   address, so an agent in a network namespace can reach etcd).
    public init(size: Int = 3, extraArguments: [String] = [], timers: (heartbeat: Int, election: Int) = (25, 250),
                onTmpfs: Bool = false, alsoListenOn: [String] = []) throws {
        let base = onTmpfs && FileManager.default.fileExists(atPath: "/dev/shm") ? URL(fileURLWithPath: "/dev/shm")
            : FileManager.default.temporaryDirectory
        directory = base.appendingPathComponent("connectd-etcd-\(UUID().uuidString)").path
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
                "--listen-client-urls", ([client] + alsoListenOn.map { "http://\($0):\(port.client)" }).joined(separator: ","),
                "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", URL(fileURLWithPath: directory).lastPathComponent,
                "--heartbeat-interval", String(timers.heartbeat), "--election-timeout", String(timers.election), "--pre-vote",
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

    /// The index of the member that leads now (asked of each running member), if any.
    public func leaderIndex() -> Int? {
        var ids: [Int: String] = [:]
        var leader: String?
        for (index, member) in members.enumerated() where member.process.isRunning {
            let port = Int(member.clientURL.split(separator: ":").last!)!
            guard let answer = try? SimpleHTTPClient.send(method: "POST", host: "127.0.0.1", port: port, target: "/v3/maintenance/status",
                                                          body: Array("{}".utf8), timeoutSeconds: 1),
                  answer.status == 200, let json = try? JSONParser.parse(answer.body) else { continue }
            ids[index] = json["header"]?["member_id"]?.stringValue
            if let known = json["leader"]?.stringValue, known != "0" { leader = known }
        }
        return ids.first { $0.value == leader }?.key
    }

    /// Every key under `prefix` with its mod revision, and the revision of the read (linearizable).
    public func range(prefix: String) throws -> (pairs: [(key: String, modRevision: Int64)], revision: Int64) {
        let start = Data(prefix.utf8)
        var end = Array(start)
        end[end.count - 1] += 1
        let body = #"{"key":"\#(start.base64EncodedString())","range_end":"\#(Data(end).base64EncodedString())"}"#
        var problems: [String] = []
        for member in members where member.process.isRunning {
            let port = Int(member.clientURL.split(separator: ":").last!)!
            let json: JSONValue
            do {
                let answer = try SimpleHTTPClient.send(method: "POST", host: "127.0.0.1", port: port, target: "/v3/kv/range",
                                                       body: Array(body.utf8), timeoutSeconds: 2)
                guard answer.status == 200 else {
                    problems.append("\(member.name): \(answer.status) \(answer.text)")
                    continue
                }
                json = try JSONParser.parse(answer.body)
            } catch {
                problems.append("\(member.name): \(error)")
                continue
            }
            var pairs: [(String, Int64)] = []
            if case .array(let kvs)? = json["kvs"] {
                for kv in kvs {
                    guard let key = kv["key"]?.stringValue.flatMap({ Data(base64Encoded: $0) }).map({ String(decoding: $0, as: UTF8.self) }),
                          let revision = kv["mod_revision"]?.stringValue.flatMap({ Int64($0) }) else { continue }
                    pairs.append((String(key.dropFirst(prefix.count)), revision))
                }
            }
            return (pairs, json["header"]?["revision"]?.stringValue.flatMap { Int64($0) } ?? 0)
        }
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "no etcd member answered a range: \(problems)"])
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
