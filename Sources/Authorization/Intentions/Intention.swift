// An intention: may source service S talk to destination service D. Consul 1.5's fields,
// precedence and string form.

import AgentConfig
import CertificateAuthority
import ConnectdCore
import Foundation

public struct Intention: Sendable, Equatable {
    public enum Origin: String, Sendable { case api, config }

    public var id: String
    public var description: String = ""
    public var sourceNS = "default"
    public var sourceName: String
    public var destinationNS = "default"
    public var destinationName: String
    public var sourceType = "consul"
    public var action: String
    public var meta: [String: String] = [:]
    public var createdAt: Date
    public var updatedAt: Date
    public var createIndex: UInt64 = 0
    public var modifyIndex: UInt64 = 0
    public var origin: Origin = .api

    public init(id: String, sourceName: String, destinationName: String, action: String, now: Date) {
        self.id = id
        self.sourceName = sourceName
        self.destinationName = destinationName
        self.action = action
        createdAt = Timestamp.wholeMicroseconds(now)
        updatedAt = createdAt
    }

    /// Consul's precedence: 9 for exact → exact down to 1 for `*/*` → `*/*`.
    public var precedence: Int {
        let destinationExact = [destinationNS, destinationName].filter { $0 != "*" }.count
        let sourceExact = [sourceNS, sourceName].filter { $0 != "*" }.count
        let base = [3, 6, 9][destinationExact]
        return base - (2 - sourceExact)
    }

    /// `ALLOW default/web => default/db (ID: <id>, Precedence: 9)`
    public var summary: String {
        "\(action.uppercased()) \(sourceNS)/\(sourceName) => \(destinationNS)/\(destinationName) (ID: \(id), Precedence: \(precedence))"
    }

    /// Whether a client identified as `namespace`/`service` is this intention's source.
    public func matchesSource(namespace: String, service: String) -> Bool {
        (sourceNS == "*" || sourceNS == namespace) && (sourceName == "*" || sourceName == service)
    }

    public var allows: Bool { action == "allow" }

    /// Highest precedence first; ties by (SourceNS, SourceName, DestinationNS, DestinationName).
    public static func ordered(_ lhs: Intention, _ rhs: Intention) -> Bool {
        if lhs.precedence != rhs.precedence { return lhs.precedence > rhs.precedence }
        return (lhs.sourceNS, lhs.sourceName, lhs.destinationNS, lhs.destinationName)
            < (rhs.sourceNS, rhs.sourceName, rhs.destinationNS, rhs.destinationName)
    }

    /// The API shape, in Consul 1.5's field order.
    public var apiJSON: JSONValue {
        .object([
            ("ID", .string(id)),
            ("Description", .string(description)),
            ("SourceNS", .string(sourceNS)),
            ("SourceName", .string(sourceName)),
            ("DestinationNS", .string(destinationNS)),
            ("DestinationName", .string(destinationName)),
            ("SourceType", .string(sourceType)),
            ("Action", .string(action)),
            ("DefaultAddr", .string("")),
            ("DefaultPort", .int(0)),
            ("Meta", .sortedObject(meta.mapValues { .string($0) })),
            ("Precedence", .int(Int64(precedence))),
            ("CreatedAt", .string(Timestamp.format(createdAt))),
            ("UpdatedAt", .string(Timestamp.format(updatedAt))),
            ("CreateIndex", .int(Int64(createIndex))),
            ("ModifyIndex", .int(Int64(modifyIndex))),
        ])
    }

    var storedJSON: JSONValue {
        var members = apiJSON.objectMembers!.filter { $0.0 != "Precedence" }
        members.append(("Origin", .string(origin.rawValue)))
        return .object(members)
    }

    init?(stored json: JSONValue) {
        guard case .string(let id)? = json["ID"], case .string(let source)? = json["SourceName"],
              case .string(let destination)? = json["DestinationName"], case .string(let action)? = json["Action"],
              let created = json["CreatedAt"]?.stringValue.flatMap(Timestamp.parse),
              let updated = json["UpdatedAt"]?.stringValue.flatMap(Timestamp.parse) else { return nil }
        self.init(id: id, sourceName: source, destinationName: destination, action: action, now: created)
        updatedAt = updated
        description = json["Description"]?.stringValue ?? ""
        sourceNS = json["SourceNS"]?.stringValue ?? "default"
        destinationNS = json["DestinationNS"]?.stringValue ?? "default"
        if case .object(let members)? = json["Meta"] {
            meta = Dictionary(uniqueKeysWithValues: members.compactMap { key, value in value.stringValue.map { (key, $0) } })
        }
        if case .int(let index)? = json["CreateIndex"] { createIndex = UInt64(max(0, index)) }
        if case .int(let index)? = json["ModifyIndex"] { modifyIndex = UInt64(max(0, index)) }
        origin = Origin(rawValue: json["Origin"]?.stringValue ?? "api") ?? .api
    }
}

/// Go's RFC 3339 with nanoseconds (`2026-11-29T03:48:20.123456Z`), UTC.
enum Timestamp {
    static func wholeMicroseconds(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1_000_000).rounded(.down) / 1_000_000)
    }

    static func format(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        // Rounded: times are kept in whole microseconds, and a parsed one may be a hair off.
        var fraction = String(min(999_999, Int(((date.timeIntervalSince1970 - seconds) * 1_000_000).rounded())))
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
            + (fraction.isEmpty ? "" : ".\(fraction)") + "Z"
    }

    static func parse(_ text: String) -> Date? {
        guard text.hasSuffix("Z") else { return nil }
        let parts = text.dropLast().split(separator: ".", maxSplits: 1)
        guard let base = RFC3339.parse(String(parts[0]) + "Z") else { return nil }
        guard parts.count == 2 else { return base }
        guard let fraction = Double("0." + parts[1]) else { return nil }
        return base.addingTimeInterval(fraction)
    }
}
