// A declarative intention in a config file (`intentions: [...]`), applied on start and reload.

public struct IntentionDefinition: Sendable, Equatable {
    public var sourceName: String
    public var destinationName: String
    /// `allow` or `deny`.
    public var action: String
    public var description: String = ""
    public var meta: [String: String] = [:]

    public init(sourceName: String, destinationName: String, action: String) {
        self.sourceName = sourceName
        self.destinationName = destinationName
        self.action = action
    }

    /// Reads one intention; problems name its key path. Field rules (wildcards, actions) are
    /// Consul's, checked here so `connectd validate` reports them.
    public static func decode(_ reader: ObjectReader) -> IntentionDefinition? {
        let source = reader.string("source_name") ?? ""
        let destination = reader.string("destination_name") ?? ""
        let action = reader.string("action") ?? ""
        var definition = IntentionDefinition(sourceName: source, destinationName: destination, action: action)
        definition.description = reader.string("description") ?? ""
        definition.meta = reader.stringMap("meta") ?? [:]
        reader.finish()
        let problems = validate(definition)
        for (key, message) in problems { reader.report(key, message) }
        return problems.isEmpty ? definition : nil
    }

    /// Consul's intention field rules, as (key, message) pairs.
    public static func validate(_ definition: IntentionDefinition) -> [(String, String)] {
        var problems: [(String, String)] = []
        for (key, name, label) in [("source_name", definition.sourceName, "SourceName"), ("destination_name", definition.destinationName, "DestinationName")] {
            if name.isEmpty {
                problems.append((key, "\(label) must be set"))
            } else if name != "*" && name.contains("*") {
                problems.append((key, "\(label) can only contain a single wildcard '*'"))
            }
        }
        if definition.action != "allow" && definition.action != "deny" {
            problems.append(("action", "Action must be set to 'allow' or 'deny'"))
        }
        return problems
    }
}
