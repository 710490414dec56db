// ConnectdCore: small value types shared by every module (JSON values, Go durations).
// It owns no agent behaviour and depends on nothing but the standard library.

/// A JSON document as a value, with object keys kept in the order they were written.
///
/// Consul's wire format prints struct fields in declaration order and map keys sorted;
/// responses build `.object` in field order and use ``JSONValue/sortedObject(_:)`` for maps.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    /// An object whose keys are sorted, as Go prints a `map[string]T`.
    public static func sortedObject(_ dictionary: [String: JSONValue]) -> JSONValue {
        .object(dictionary.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    /// The value of `key` in an object (first match), or nil.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    /// A short name of the JSON type, for error messages ("a string", "an object"...).
    public var typeDescription: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var objectMembers: [(String, JSONValue)]? {
        if case .object(let members) = self { return members }
        return nil
    }

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.int(let a), .int(let b)): a == b
        case (.double(let a), .double(let b)): a == b
        case (.int(let a), .double(let b)), (.double(let b), .int(let a)): Double(a) == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)):
            a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let b): hasher.combine(b)
        case .int(let i): hasher.combine(Double(i))
        case .double(let d): hasher.combine(d)
        case .string(let s): hasher.combine(s)
        case .array(let a): hasher.combine(a)
        case .object(let members):
            for (key, value) in members {
                hasher.combine(key)
                hasher.combine(value)
            }
        }
    }
}

/// A value that has a JSON wire representation.
public protocol JSONRepresentable {
    var json: JSONValue { get }
}

extension String: JSONRepresentable { public var json: JSONValue { .string(self) } }
extension Bool: JSONRepresentable { public var json: JSONValue { .bool(self) } }
extension Int: JSONRepresentable { public var json: JSONValue { .int(Int64(self)) } }
extension JSONValue: JSONRepresentable { public var json: JSONValue { self } }

extension Array: JSONRepresentable where Element: JSONRepresentable {
    public var json: JSONValue { .array(map(\.json)) }
}

extension Optional where Wrapped: JSONRepresentable {
    /// The wrapped value's JSON, or `null` (Go's nil slice or map).
    public var jsonOrNull: JSONValue { self?.json ?? .null }
}
