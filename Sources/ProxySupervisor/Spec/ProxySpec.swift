// ProxySupervisor: turns the desired managed proxies in AgentState into running processes:
// spawn with a curated environment, restart with backoff, stop by process group, keep logs,
// and re-adopt proxies that outlived a connectd restart. It never touches HTTP; routes read
// its status snapshot.

import AgentConfig
import ConnectdCore

/// Everything that defines one proxy process. Two specs with the same ``processHash`` describe
/// the same process: a change of `config`, upstreams or ports never changes it.
public struct ProxySpec: Sendable, Hashable {
    public var proxyID: String
    public var targetServiceID: String
    public var execMode: ExecMode
    /// argv as configured; argv[0] is resolved against PATH at spawn time.
    public var command: [String]
    /// The complete, curated environment of the process (includes the proxy token).
    public var environment: [String: String]
    /// Restart, stop and log settings; changing them never restarts the process.
    public var supervision: ResolvedSupervision

    public init(proxyID: String, targetServiceID: String, execMode: ExecMode, command: [String],
                environment: [String: String], supervision: ResolvedSupervision) {
        self.proxyID = proxyID
        self.targetServiceID = targetServiceID
        self.execMode = execMode
        self.command = command
        self.environment = environment
        self.supervision = supervision
    }

    /// A digest of what makes the process: exec mode, argv and environment.
    public var processHash: String {
        ContentHash.of(.object([
            ("ExecMode", .string(execMode.rawValue)),
            ("Command", command.json),
            ("Environment", .sortedObject(environment.mapValues { .string($0) })),
        ]))
    }
}
