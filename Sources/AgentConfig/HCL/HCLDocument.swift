// Consul's reading of an HCL 1 file, as a value tree the JSON reader then decodes: a block is an
// object; `key "label" { }` nests under its labels (labelled blocks of one key merge); repeated
// `service { }` and `check { }` blocks become `services` and `checks`; a block for a key that
// holds a list of objects (`services`, `checks`, `upstreams`, `static_tokens`, `intentions`)
// is one element of it. Anything else given twice is an error with its position.

import ConnectdCore

public enum HCLDocument {
    /// Keys whose value is a list of objects: one block is a one-element list.
    static let listKeys: Set<String> = ["services", "checks", "upstreams", "static_tokens", "intentions"]
    /// Repeated blocks of these keys are the list under the plural key.
    static let plurals = ["service": "services", "check": "checks"]

    /// The value tree of an HCL file, or the first problem with its line and column.
    public static func parse(_ bytes: [UInt8]) throws(HCLSyntaxError) -> JSONValue {
        try object(try HCLParser.parse(bytes))
    }

    static func object(_ items: [HCLItem]) throws(HCLSyntaxError) -> JSONValue {
        var order: [String] = []
        var groups: [String: [HCLItem]] = [:]
        for item in items {
            if groups[item.key] == nil { order.append(item.key) }
            groups[item.key, default: []].append(item)
        }
        // Repeated unlabelled `service` / `check` blocks join the plural key's list.
        for (singular, plural) in plurals {
            guard let group = groups[singular], group.count > 1, group.allSatisfy({ $0.labels.isEmpty && isObject($0.value) }) else { continue }
            if groups[plural] == nil { order.insert(plural, at: order.firstIndex(of: singular)!) }
            groups[plural, default: []] += group
            groups[singular] = nil
            order.removeAll { $0 == singular }
        }
        var members: [(String, JSONValue)] = []
        for key in order {
            guard let group = groups[key] else { continue }
            members.append((key, try value(of: key, group)))
        }
        return .object(members)
    }

    /// The value of `key` from every item that sets it.
    private static func value(of key: String, _ group: [HCLItem]) throws(HCLSyntaxError) -> JSONValue {
        if group.contains(where: { !$0.labels.isEmpty }) {
            // `service "web" { }` and `service "db" { }`: one object keyed by the labels.
            var merged = JSONValue.object([])
            for item in group {
                var nested = try convert(item.value)
                for label in item.labels.reversed() { nested = .object([(label, nested)]) }
                merged = try merge(merged, nested, key: key, at: item.position)
            }
            return merged
        }
        // A scalar under such a key (`intentions = "write"` in ACL rules) is left to the decoder.
        if listKeys.contains(key), !group.contains(where: { if case .scalar = $0.value { true } else { false } }) {
            var elements: [JSONValue] = []
            for item in group {
                switch item.value {
                case .object: elements.append(try convert(item.value))
                case .list(let nodes):
                    for node in nodes { elements.append(try convert(node)) }
                case .scalar: break
                }
            }
            return .array(elements)
        }
        if group.count > 1 {
            let second = group[1].position
            let message = group.allSatisfy({ isObject($0.value) })
                ? "block \"\(key)\" appears twice (only service and check blocks repeat; merge the two)"
                : "\"\(key)\" is set twice (the first time on line \(group[0].position.line))"
            throw HCLSyntaxError(line: second.line, column: second.column, message: message)
        }
        return try convert(group[0].value)
    }

    private static func convert(_ node: HCLNode) throws(HCLSyntaxError) -> JSONValue {
        switch node {
        case .scalar(let value): return value
        case .list(let nodes):
            var elements: [JSONValue] = []
            for node in nodes { elements.append(try convert(node)) }
            return .array(elements)
        case .object(let items): return try object(items)
        }
    }

    private static func isObject(_ node: HCLNode) -> Bool {
        if case .object = node { true } else { false }
    }

    /// Objects merged key by key (labelled blocks); anything else given twice is an error.
    private static func merge(_ base: JSONValue, _ addition: JSONValue, key: String, at position: HCLPosition) throws(HCLSyntaxError) -> JSONValue {
        guard case .object(var members) = base, case .object(let added) = addition else {
            throw HCLSyntaxError(line: position.line, column: position.column, message: "\"\(key)\" is set twice")
        }
        for (name, value) in added {
            if let index = members.firstIndex(where: { $0.0 == name }) {
                members[index].1 = try merge(members[index].1, value, key: name, at: position)
            } else {
                members.append((name, value))
            }
        }
        return .object(members)
    }
}
