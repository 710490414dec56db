// Log lines on stderr: Consul-like text (`2026-11-29T05:00:00.123Z [INFO]  agent: msg k=v`) or JSON lines.

import AgentConfig
import ConnectdCore
import Foundation
import Logging
import Synchronization

public struct ConsoleLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let json: Bool

    private static let lock = Mutex(())

    public init(label: String, level: Logger.Level, json: Bool) {
        self.label = label
        self.logLevel = level
        self.json = json
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let time = Self.timestamp()
        let line: String
        if json {
            var members: [(String, JSONValue)] = [
                ("@timestamp", .string(time)), ("@level", .string(Self.levelName(event.level).lowercased())),
                ("@module", .string(label)), ("@message", .string(event.message.description)),
            ]
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) { members.append((key, .string("\(value)"))) }
            line = JSONValue.object(members).encoded()
        } else {
            let level = "[\(Self.levelName(event.level))]".padding(toLength: 7, withPad: " ", startingAt: 0)
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.quoted("\($0.value)"))" }
            line = ([time, level, "\(label): \(event.message)"] + fields).joined(separator: " ")
        }
        Self.lock.withLock { _ in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info, .notice: "INFO"
        case .warning: "WARN"
        case .error, .critical: "ERROR"
        }
    }

    static func quoted(_ text: String) -> String {
        guard text.isEmpty || text.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\n" }) else { return text }
        let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
        return "\"\(escaped)\""
    }

    static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}

/// Maps Consul's log levels onto swift-log's.
public enum LogLevelMapping {
    public static func swiftLogLevel(_ level: AgentConfig.LogLevel) -> Logger.Level {
        switch level {
        case .trace: .trace
        case .debug: .debug
        case .info: .info
        case .warn: .warning
        case .err: .error
        }
    }
}
