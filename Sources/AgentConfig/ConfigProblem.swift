// AgentConfig: the agent's configuration model, Consul-JSON loading, merging and validation.
// It owns what a config file may say and every message about what is wrong with one.
// It must not touch state, processes or the network.

/// One thing wrong with the configuration, located by file and key path.
public struct ConfigProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// File the problem is in, as given by the user; nil for flags or API bodies.
    public var file: String?
    /// Dotted key path (`service.connect.proxy.exec_mode`, `services[1].port`); empty for the file itself.
    public var keyPath: String
    public var message: String

    public init(file: String?, keyPath: String, message: String) {
        self.file = file
        self.keyPath = keyPath
        self.message = message
    }

    /// `web.json: service.connect.proxy.exec_mode: invalid exec mode "deamon" (expected daemon or script)`
    public var description: String {
        [file, keyPath.isEmpty ? nil : keyPath, message].compactMap { $0 }.joined(separator: ": ")
    }
}

/// Every problem found while loading or validating a configuration.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigProblem]
    public init(_ problems: [ConfigProblem]) { self.problems = problems }
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Collects problems while one document is decoded.
public final class ProblemSink {
    public let file: String?
    public private(set) var problems: [ConfigProblem] = []

    public init(file: String?) { self.file = file }

    public func report(_ keyPath: String, _ message: String) {
        problems.append(ConfigProblem(file: file, keyPath: keyPath, message: message))
    }
}
