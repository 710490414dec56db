// Typed, path-tracking access to one JSON object, reporting type errors and unknown keys.

import ConnectdCore

/// How keys in a document are matched.
public enum KeyMatching: Sendable {
    /// Config files: exact snake_case keys; any other key is an error.
    case strictSnakeCase
    /// API bodies (Consul decodes these case-insensitively): `ExecMode`, `exec_mode` and `execmode`
    /// all match `exec_mode`; unknown keys are ignored, as Consul 1.5 does.
    case lenient

    /// Whether `written` (a key in the document) is the key an accessor asks for.
    func matches(_ written: String, _ key: String) -> Bool {
        switch self {
        case .strictSnakeCase: written == key
        case .lenient: Self.looselyEqual(written, key)
        }
    }

    /// Equal ignoring ASCII case and underscores, without building either normalized form.
    static func looselyEqual(_ lhs: String, _ rhs: String) -> Bool {
        var left = lhs.utf8.makeIterator()
        var right = rhs.utf8.makeIterator()
        func next(_ iterator: inout String.UTF8View.Iterator) -> UInt8? {
            while let byte = iterator.next() {
                if byte == UInt8(ascii: "_") { continue }
                return (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
            }
            return nil
        }
        while true {
            let (a, b) = (next(&left), next(&right))
            if a != b { return false }
            if a == nil { return true }
        }
    }
}

/// Reads keys of one JSON object; every accessor reports problems with the full key path.
public final class ObjectReader {
    public let path: String
    public let sink: ProblemSink
    public let matching: KeyMatching
    private let members: [(String, JSONValue)]
    private var consumed = Set<Int>()
    /// Every key an accessor asked for: the keys this object may have, for "did you mean".
    private var askedKeys: [String] = []

    public init(_ members: [(String, JSONValue)], path: String, sink: ProblemSink, matching: KeyMatching) {
        self.members = members
        self.path = path
        self.sink = sink
        self.matching = matching
    }

    /// A reader for `value` at `path`, or nil (with a problem reported) when it is not an object.
    public static func object(_ value: JSONValue, path: String, sink: ProblemSink, matching: KeyMatching) -> ObjectReader? {
        guard case .object(let members) = value else {
            sink.report(path, "expected an object, got \(value.typeDescription)")
            return nil
        }
        return ObjectReader(members, path: path, sink: sink, matching: matching)
    }

    /// The path of `key` as the document spells it (`Port` in an API body, `port` in a file).
    public func keyPath(_ key: String) -> String {
        let written = members.first { matching.matches($0.0, key) }?.0 ?? key
        return path.isEmpty ? written : "\(path).\(written)"
    }

    public func report(_ key: String, _ message: String) { sink.report(keyPath(key), message) }

    /// The raw value of `key`, marking it consumed. JSON `null` counts as absent.
    public func raw(_ key: String) -> JSONValue? {
        // Which keys were asked for and consumed matters only to `finish()` in strict mode.
        let strict = matching == .strictSnakeCase
        if strict && !askedKeys.contains(key) { askedKeys.append(key) }
        for offset in members.indices where matching.matches(members[offset].0, key) {
            let member = members[offset]
            if strict { consumed.insert(offset) }
            if case .null = member.1 { return nil }
            return member.1
        }
        return nil
    }

    public func has(_ key: String) -> Bool { raw(key) != nil }

    /// Every key of the object as written (for map-like objects such as ACL rules).
    public var keys: [String] { members.map(\.0) }

    public func string(_ key: String) -> String? {
        guard let value = raw(key) else { return nil }
        guard case .string(let s) = value else {
            report(key, "expected a string, got \(value.typeDescription)")
            return nil
        }
        return s
    }

    public func bool(_ key: String) -> Bool? {
        guard let value = raw(key) else { return nil }
        guard case .bool(let b) = value else {
            report(key, "expected a boolean (true or false), got \(value.typeDescription)")
            return nil
        }
        return b
    }

    public func int(_ key: String, in range: ClosedRange<Int>? = nil) -> Int? {
        guard let value = raw(key) else { return nil }
        let number: Int?
        switch value {
        case .int(let i): number = Int(exactly: i)
        case .double(let d): number = d == d.rounded() ? Int(exactly: d) : nil
        default: number = nil
        }
        guard let number else {
            report(key, "expected a whole number, got \(value.typeDescription == "a number" ? "\(value.encoded())" : value.typeDescription)")
            return nil
        }
        if let range, !range.contains(number) {
            report(key, "\(number) is out of range (\(range.lowerBound)-\(range.upperBound))")
            return nil
        }
        return number
    }

    public func stringArray(_ key: String) -> [String]? {
        guard let value = raw(key) else { return nil }
        guard case .array(let elements) = value else {
            report(key, "expected an array of strings, got \(value.typeDescription)")
            return nil
        }
        var result: [String] = []
        for (index, element) in elements.enumerated() {
            guard case .string(let s) = element else {
                sink.report("\(keyPath(key))[\(index)]", "expected a string, got \(element.typeDescription)")
                continue
            }
            result.append(s)
        }
        return result
    }

    public func stringMap(_ key: String) -> [String: String]? {
        guard let value = raw(key) else { return nil }
        guard case .object(let members) = value else {
            report(key, "expected an object of strings, got \(value.typeDescription)")
            return nil
        }
        var result: [String: String] = [:]
        for (name, element) in members {
            guard case .string(let s) = element else {
                sink.report("\(keyPath(key)).\(name)", "expected a string, got \(element.typeDescription)")
                continue
            }
            result[name] = s
        }
        return result
    }

    /// An opaque JSON object (proxy `config`), kept as is.
    public func opaqueObject(_ key: String) -> JSONValue? {
        guard let value = raw(key) else { return nil }
        guard case .object = value else {
            report(key, "expected an object, got \(value.typeDescription)")
            return nil
        }
        return value
    }

    public func object(_ key: String) -> ObjectReader? {
        guard let value = raw(key) else { return nil }
        return ObjectReader.object(value, path: keyPath(key), sink: sink, matching: matching)
    }

    /// Readers for each element of an array of objects, with `key[i]` paths.
    public func objectArray(_ key: String) -> [ObjectReader]? {
        guard let value = raw(key) else { return nil }
        guard case .array(let elements) = value else {
            report(key, "expected an array of objects, got \(value.typeDescription)")
            return nil
        }
        return elements.enumerated().compactMap { index, element in
            ObjectReader.object(element, path: "\(keyPath(key))[\(index)]", sink: sink, matching: matching)
        }
    }

    /// Marks `key` as known but unsupported, with a message naming what to do instead.
    public func rejectIfPresent(_ key: String, _ message: String) {
        if raw(key) != nil { report(key, message) }
    }

    /// Reports every key no accessor asked for (strict mode only). Call once, after reading.
    public func finish() {
        guard case .strictSnakeCase = matching else { return }
        for (offset, member) in members.enumerated() where !consumed.contains(offset) {
            var message = "unknown key \"\(member.0)\""
            if let suggestion = Self.suggestion(for: member.0, among: askedKeys) {
                message += " (did you mean \"\(suggestion)\"?)"
            }
            report(member.0, message)
        }
    }

    /// The closest known key within two edits, for "did you mean" hints.
    static func suggestion(for key: String, among known: [String]) -> String? {
        let scored = known.map { ($0, editDistance(key.lowercased(), $0)) }.filter { $0.1 <= 2 }
        return scored.min { $0.1 < $1.1 }?.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
