import AgentConfig
import AgentState
import AgentStore
import ConnectdCore
import Foundation
import Logging
import ProxySupervisor

struct AllFree: PortProbe {
    func isFree(port: Int) -> Bool { true }
}

/// A supervisor over a real AgentState in a temporary data_dir, spawning real processes.
final class SupervisorHarness: @unchecked Sendable {
    let dataDir: String
    let outDir: String
    let state: AgentState
    let config: SharedValue<AgentConfiguration>
    var supervisor: Supervisor
    private var runTask: Task<Void, Never>?

    /// `script` is the body of a /bin/sh script used as every proxy's command; it can use $OUT.
    init(script: String, isRoot: Bool = true, allowRoot: Bool = true, supervision: SupervisionSettings = SupervisionSettings(),
         dataDir: String? = nil) throws {
        let root = dataDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("connectd-sup-\(UUID().uuidString)").path
        self.dataDir = root
        outDir = root + "/out"
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        let scriptPath = root + "/proxy.sh"
        try "#!/bin/sh\nOUT=\(outDir)\n\(script)\n".write(toFile: scriptPath, atomically: true, encoding: .utf8)
        chmod(scriptPath, 0o755)
        var configuration = AgentConfiguration()
        configuration.allowManagedRoot = allowRoot
        configuration.proxyDefaults.daemonCommand = [scriptPath]
        var layer = SupervisionSettings()
        layer.stopGrace = .seconds(2)
        configuration.proxyDefaults.supervision = layer.overlaid(by: supervision)
        config = SharedValue(configuration)
        var logger = Logger(label: "supervisor-test")
        logger.logLevel = .critical
        state = try AgentState(store: try FileStore(dataDir: root), allocator: PortAllocator(range: 30000...30100, probe: AllFree()), logger: logger)
        let box = config
        supervisor = Supervisor(
            state: state, configuration: { box.value }, dataDir: root, builtinCommand: ["/bin/false"],
            agentEnvironment: ["PATH": "/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8", "KEEP_ME": "kept", "DROP_ME": "dropped",
                               "NOTIFY_SOCKET": "/run/notify", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1", "LISTEN_FDS": "3",
                               "LISTEN_PID": "1", "INVOCATION_ID": "abc"],
            isRoot: isRoot, logger: logger)
    }

    func start() async {
        let supervisor = supervisor
        runTask = Task { await supervisor.run() }
        await supervisor.apiListening(host: "127.0.0.1", port: 8500)
    }

    /// Ends supervision: stops every proxy (or leaves them, after `leaveProxiesRunning`).
    func stop() async {
        runTask?.cancel()
        await runTask?.value
        runTask = nil
    }

    func status(_ id: String) -> ProxyStatus? { supervisor.status().first { $0.proxyID == id } }

    func pid(_ id: String) -> Int32? {
        guard let status = status(id), case .running(let pid, _, _) = status.state else { return nil }
        return pid
    }

    func cleanUp() { try? FileManager.default.removeItem(atPath: dataDir) }
}

func service(_ name: String, config: JSONValue = .object([]), command: [String] = [], mode: ExecMode? = nil) -> ServiceDefinition {
    var definition = ServiceDefinition(id: name, name: name)
    definition.port = 8080
    var request = ManagedProxyRequest()
    request.config = config
    request.command = command
    request.execMode = mode
    var connect = ServiceConnect()
    connect.proxy = request
    definition.connect = connect
    return definition
}

/// Polls `condition` every 10 ms for up to `seconds`.
func waitUntil(_ seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

func isAlive(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    // A zombie is not alive.
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    guard let close = stat.lastIndex(of: ")") else { return false }
    return !stat[stat.index(after: close)...].hasPrefix(" Z")
}

/// Children of this process that are zombies.
func zombieChildren() -> [Int32] {
    let me = getpid()
    return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { name -> Int32? in
        guard let pid = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 2, fields[0] == "Z", Int32(fields[1]) == me else { return nil }
        return pid
    }
}

/// Descriptors of this process that belong to a supervisor under `dataDir` (its pipes and log
/// files) or are pidfds; other suites' sockets and pipes running in parallel do not count.
func supervisorDescriptorCount(dataDir: String) -> Int {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).filter { fd in
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? ""
        return target.hasPrefix(dataDir) || target.contains("pidfd")
    }.count
}
