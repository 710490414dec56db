// The CA configuration in force: what `GET /v1/connect/ca/configuration` shows (never a key).

import AgentConfig
import ConnectdCore
import Crypto

public struct CAConfiguration: Sendable, Equatable {
    public var leafCertTTL: Duration = CASettings.defaultLeafCertTTL
    public var rotationPeriod: Duration = CASettings.defaultRotationPeriod
    public var csrMaxPerSecond: Int?
    public var csrMaxConcurrent: Int?
    /// Hash of the `connect.ca_config` file settings last applied, to apply file changes once.
    var fileSettingsHash: String = ""
    var createIndex: UInt64 = 0
    var modifyIndex: UInt64 = 0
    public var modifyIndexValue: UInt64 { modifyIndex }

    /// `{"Provider": "consul", "Config": {...}, "CreateIndex": n, "ModifyIndex": n}`.
    public var apiJSON: JSONValue {
        var config: [String: JSONValue] = [
            "LeafCertTTL": .string(GoDurationText.format(leafCertTTL)),
            "RotationPeriod": .string(GoDurationText.format(rotationPeriod)),
        ]
        if let csrMaxPerSecond { config["CSRMaxPerSecond"] = .int(Int64(csrMaxPerSecond)) }
        if let csrMaxConcurrent { config["CSRMaxConcurrent"] = .int(Int64(csrMaxConcurrent)) }
        return .object([
            ("Provider", .string("consul")),
            ("Config", .sortedObject(config)),
            ("CreateIndex", .int(Int64(createIndex))),
            ("ModifyIndex", .int(Int64(modifyIndex))),
        ])
    }

    var storedJSON: JSONValue {
        var members: [(String, JSONValue)] = [
            ("LeafCertTTL", .string(GoDurationText.format(leafCertTTL))),
            ("RotationPeriod", .string(GoDurationText.format(rotationPeriod))),
            ("FileSettingsHash", .string(fileSettingsHash)),
        ]
        if let csrMaxPerSecond { members.append(("CSRMaxPerSecond", .int(Int64(csrMaxPerSecond)))) }
        if let csrMaxConcurrent { members.append(("CSRMaxConcurrent", .int(Int64(csrMaxConcurrent)))) }
        return .object(members)
    }

    init() {}

    init?(stored json: JSONValue, createIndex: UInt64, modifyIndex: UInt64) {
        guard let ttl = json["LeafCertTTL"]?.stringValue.flatMap(GoDurationText.parse),
              let rotation = json["RotationPeriod"]?.stringValue.flatMap(GoDurationText.parse) else { return nil }
        leafCertTTL = ttl
        rotationPeriod = rotation
        fileSettingsHash = json["FileSettingsHash"]?.stringValue ?? ""
        if case .int(let value)? = json["CSRMaxPerSecond"] { csrMaxPerSecond = Int(value) }
        if case .int(let value)? = json["CSRMaxConcurrent"] { csrMaxConcurrent = Int(value) }
        self.createIndex = createIndex
        self.modifyIndex = modifyIndex
    }

    /// These settings laid over `settings`' set fields.
    func updated(by settings: CASettings) -> CAConfiguration {
        var result = self
        if let ttl = settings.leafCertTTL { result.leafCertTTL = ttl }
        if let period = settings.rotationPeriod { result.rotationPeriod = period }
        if let value = settings.csrMaxPerSecond { result.csrMaxPerSecond = value }
        if let value = settings.csrMaxConcurrent { result.csrMaxConcurrent = value }
        return result
    }
}

enum GoDurationText {
    static func format(_ duration: Duration) -> String {
        GoDuration.format(nanoseconds: duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    static func parse(_ text: String) -> Duration? {
        GoDuration.parseNanoseconds(text).map { .nanoseconds($0) }
    }
}

extension Duration {
    /// Seconds as a floating-point number (for Date arithmetic).
    var timeInterval: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

extension CASettings {
    /// A stable digest of the file settings, to notice when a reload changes them.
    var digest: String {
        let parts: [String] = [
            clusterID ?? "", privateKey ?? "", rootCert ?? "",
            leafCertTTL.map(GoDurationText.format) ?? "", rotationPeriod.map(GoDurationText.format) ?? "",
            csrMaxPerSecond.map(String.init) ?? "", csrMaxConcurrent.map(String.init) ?? "",
        ]
        return ColonHex.encode(SHA256.hash(data: Array(parts.joined(separator: "\u{0}").utf8))).filter { $0 != ":" }
    }
}
