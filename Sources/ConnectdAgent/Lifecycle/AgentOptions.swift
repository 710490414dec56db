// ConnectdAgent: the composition root. It wires config, state and the HTTP API, owns the
// agent's lifecycle (start, reload, stop) and the signals that drive it. It holds no endpoint
// logic and no state rules of its own.

import AgentConfig

/// What `connectd agent` was asked to do: where config lives and what the flags override.
public struct AgentOptions: Sendable {
    public var sources: ConfigSources
    /// Flag values; merged over the files on start and on every reload.
    public var flags: ConfigFragment
    public var dev: Bool
    public var hostName: String

    public init(sources: ConfigSources, flags: ConfigFragment = ConfigFragment(), dev: Bool, hostName: String) {
        self.sources = sources
        self.flags = flags
        self.dev = dev
        self.hostName = hostName
    }

    /// Loads and validates the configuration these options describe.
    public func loadConfiguration() throws(ConfigErrors) -> AgentConfiguration {
        try ConfigLoader.load(sources: sources, overrides: flags, dev: dev, requireDataDir: true, hostName: hostName)
    }
}
