// `connect.ca_config` (agent files, snake_case) and the `Config` map of
// `PUT /v1/connect/ca/configuration` (PascalCase): the built-in CA's settings, every field optional.

import ConnectdCore

public struct CASettings: Sendable, Equatable {
    /// A preset cluster ID (UUID); used only when the CA is first created.
    public var clusterID: String?
    /// A root key (PEM) to use instead of a generated one; changing it rotates the root.
    public var privateKey: String?
    /// The root certificate for `privateKey` (optional; generated from the key when absent).
    public var rootCert: String?
    public var leafCertTTL: Duration?
    /// Accepted for compatibility; Consul 1.5 did not use it either (no automatic rotation).
    public var rotationPeriod: Duration?
    /// Accepted for compatibility; connectd does not rate-limit signing.
    public var csrMaxPerSecond: Int?
    public var csrMaxConcurrent: Int?
    /// connectd: the longest random delay before cached leaves are re-issued after a root change.
    public var rootChangeJitter: Duration?
    /// connectd (API only): generate a fresh root key, which rotates the root.
    public var generateKey = false

    public static let defaultLeafCertTTL: Duration = .seconds(72 * 3600)
    public static let defaultRotationPeriod: Duration = .seconds(2160 * 3600)
    public static let defaultRootChangeJitter: Duration = .seconds(30)
    public static let leafCertTTLRange: ClosedRange<Duration> = .seconds(60) ... .seconds(8760 * 3600)

    public init() {}

    /// Reads the settings from `reader`; problems name the key (`connect.ca_config.leaf_cert_ttl`).
    public static func decode(_ reader: ObjectReader, allowGenerateKey: Bool) -> CASettings {
        var settings = CASettings()
        if let text = reader.string("cluster_id") {
            if UUIDText.isValid(text) {
                settings.clusterID = text.lowercased()
            } else {
                reader.report("cluster_id", "cluster_id was supplied but was not a valid UUID")
            }
        }
        settings.privateKey = reader.string("private_key").flatMap { $0.isEmpty ? nil : $0 }
        settings.rootCert = reader.string("root_cert").flatMap { $0.isEmpty ? nil : $0 }
        if let privateKey = settings.privateKey, !privateKey.contains("PRIVATE KEY-----") {
            reader.report("private_key", "expected a PEM private key (-----BEGIN EC PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----)")
        }
        if settings.rootCert != nil && settings.privateKey == nil {
            reader.report("root_cert", "must provide a private key when providing a root cert")
        }
        settings.leafCertTTL = duration(reader, "leaf_cert_ttl")
        if let ttl = settings.leafCertTTL, !leafCertTTLRange.contains(ttl) {
            reader.report("leaf_cert_ttl", ttl < leafCertTTLRange.lowerBound
                ? "leaf cert TTL must be at least 1m" : "leaf cert TTL must be less than 1 year")
        }
        settings.rotationPeriod = duration(reader, "rotation_period")
        settings.rootChangeJitter = duration(reader, "root_change_jitter")
        settings.csrMaxPerSecond = reader.int("csr_max_per_second", in: 0...Int(Int32.max))
        settings.csrMaxConcurrent = reader.int("csr_max_concurrent", in: 0...Int(Int32.max))
        if allowGenerateKey { settings.generateKey = reader.bool("generate_key") ?? false }
        return settings
    }

    /// `other`'s set fields over these.
    public func overlaid(by other: CASettings) -> CASettings {
        var result = self
        result.clusterID = other.clusterID ?? clusterID
        result.privateKey = other.privateKey ?? privateKey
        result.rootCert = other.rootCert ?? rootCert
        result.leafCertTTL = other.leafCertTTL ?? leafCertTTL
        result.rotationPeriod = other.rotationPeriod ?? rotationPeriod
        result.csrMaxPerSecond = other.csrMaxPerSecond ?? csrMaxPerSecond
        result.csrMaxConcurrent = other.csrMaxConcurrent ?? csrMaxConcurrent
        result.rootChangeJitter = other.rootChangeJitter ?? rootChangeJitter
        result.generateKey = other.generateKey || generateKey
        return result
    }

    private static func duration(_ reader: ObjectReader, _ key: String) -> Duration? {
        // Consul's API also takes a number of nanoseconds here.
        if case .int(let nanoseconds)? = reader.raw(key) {
            return nanoseconds >= 0 ? .nanoseconds(nanoseconds) : nil
        }
        return SupervisionSettings.duration(reader, key)
    }
}

/// Syntax check for a UUID in 8-4-4-4-12 hex form.
public enum UUIDText {
    public static func isValid(_ text: String) -> Bool {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        return groups.map(\.count) == [8, 4, 4, 4, 12] && groups.allSatisfy { $0.allSatisfy(\.isHexDigit) }
    }
}
