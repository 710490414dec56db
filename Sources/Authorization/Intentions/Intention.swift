// An intention: may source service S talk to destination service D. Consul 1.5's fields,
// precedence and string form.

import AgentConfig

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
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    public var createIndex: UInt64 = 0
    public var modifyIndex: UInt64 = 0
    public var origin: Origin = .api

    public init(id: String, sourceName: String, destinationName: String, action: String, now: Date) {
        self.id = id
        self.sourceName = sourceName
        self.destinationName = destinationName
        self.action = action
        createdAt = Timestamp(now)
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
            ("CreatedAt", .string(createdAt.text)),
            ("UpdatedAt", .string(updatedAt.text)),
            ("CreateIndex", .int(Int64(createIndex))),
            ("ModifyIndex", .int(Int64(modifyIndex))),
        ])
    }

    public var storedJSON: JSONValue {
        var members = apiJSON.objectMembers!.filter { $0.0 != "Precedence" }
        members.append(("Origin", .string(origin.rawValue)))
        return .object(members)
    }

    public init?(stored json: JSONValue) {
        guard case .string(let id)? = json["ID"], case .string(let source)? = json["SourceName"],
              case .string(let destination)? = json["DestinationName"], case .string(let action)? = json["Action"],
              let created = json["CreatedAt"]?.stringValue.flatMap(Timestamp.init(text:)),
              let updated = json["UpdatedAt"]?.stringValue.flatMap(Timestamp.init(text:)) else { return nil }
        self.init(id: id, sourceName: source, destinationName: destination, action: action, now: created.date)
        createdAt = created
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
