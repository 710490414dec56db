// `acl` (Consul agent JSON) plus connectd's `acl.static_tokens`, and ACL rules in Consul's JSON
// rule form: `service` / `service_prefix` (policy, intentions), `agent` / `agent_prefix`, `operator`.

import ConnectdCore

/// An access level; `deny` < `read` < `write`.
public enum ACLPolicy: String, Sendable, Comparable, CaseIterable {
    case deny, read, write

    public static func < (lhs: ACLPolicy, rhs: ACLPolicy) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A rule for a service name (exact) or prefix.
public struct ServiceRule: Sendable, Equatable {
    public var policy: ACLPolicy
    /// Access to intentions whose destination is the service; nil: read when `policy` is read or write.
    public var intentions: ACLPolicy?

    public init(policy: ACLPolicy, intentions: ACLPolicy? = nil) {
        self.policy = policy
        self.intentions = intentions
    }
}

/// A token's rules. The most specific rule wins: exact over prefix, longer prefix over shorter.
public struct ACLRules: Sendable, Equatable {
    public var services: [String: ServiceRule] = [:]
    public var servicePrefixes: [String: ServiceRule] = [:]
    public var agents: [String: ACLPolicy] = [:]
    public var agentPrefixes: [String: ACLPolicy] = [:]
    public var operatorPolicy: ACLPolicy?

    public init() {}

    /// The rule that applies to service `name`, if any.
    public func serviceRule(_ name: String) -> ServiceRule? {
        if let exact = services[name] { return exact }
        return Self.longestPrefix(servicePrefixes, name)
    }

    public func agentPolicy(_ node: String) -> ACLPolicy? {
        if let exact = agents[node] { return exact }
        return Self.longestPrefix(agentPrefixes, node)
    }

    static func longestPrefix<Value>(_ rules: [String: Value], _ name: String) -> Value? {
        rules.filter { name.hasPrefix($0.key) }.max { $0.key.count < $1.key.count }?.value
    }

    /// Reads rules from `reader` (an object in Consul's JSON rule form).
    public static func decode(_ reader: ObjectReader) -> ACLRules {
        var rules = ACLRules()
        func policy(_ owner: ObjectReader, _ key: String) -> ACLPolicy? {
            guard let text = owner.string(key) else { return nil }
            guard let value = ACLPolicy(rawValue: text) else {
                owner.report(key, "invalid policy \"\(text)\" (expected read, write or deny)")
                return nil
            }
            return value
        }
        func serviceRules(_ key: String) -> [String: ServiceRule] {
            guard let block = reader.object(key) else { return [:] }
            var result: [String: ServiceRule] = [:]
            for name in block.keys {
                guard let rule = block.object(name) else { continue }
                if let value = policy(rule, "policy") {
                    result[name] = ServiceRule(policy: value, intentions: policy(rule, "intentions"))
                } else if !rule.has("policy") {
                    rule.report("policy", "a service rule needs a policy")
                }
                rule.finish()
            }
            block.finish()
            return result
        }
        func agentRules(_ key: String) -> [String: ACLPolicy] {
            guard let block = reader.object(key) else { return [:] }
            var result: [String: ACLPolicy] = [:]
            for name in block.keys {
                guard let rule = block.object(name) else { continue }
                if let value = policy(rule, "policy") { result[name] = value }
                rule.finish()
            }
            block.finish()
            return result
        }
        rules.services = serviceRules("service")
        rules.servicePrefixes = serviceRules("service_prefix")
        rules.agents = agentRules("agent")
        rules.agentPrefixes = agentRules("agent_prefix")
        rules.operatorPolicy = policy(reader, "operator")
        return rules
    }
}

/// A token defined in config (`acl.static_tokens`).
public struct StaticToken: Sendable, Equatable {
    public var secret: String
    public var description: String
    public var rules: ACLRules

    public init(secret: String, description: String, rules: ACLRules) {
        self.secret = secret
        self.description = description
        self.rules = rules
    }
}

public struct ACLSettings: Sendable, Equatable {
    public var enabled = false
    /// `allow` or `deny`: what a token gets where no rule of its own applies.
    public var defaultAllow = true
    public var masterToken: String?
    public var agentToken: String?
    /// Used for requests that carry no token.
    public var defaultToken: String?
    public var staticTokens: [StaticToken] = []

    public init() {}

    /// `other`'s set fields over these; static tokens accumulate (a later secret replaces an earlier one).
    public func overlaid(by other: ACLFragment) -> ACLSettings {
        var result = self
        if let enabled = other.enabled { result.enabled = enabled }
        if let policy = other.defaultPolicy { result.defaultAllow = policy == "allow" }
        result.masterToken = other.masterToken ?? masterToken
        result.agentToken = other.agentToken ?? agentToken
        result.defaultToken = other.defaultToken ?? defaultToken
        for token in other.staticTokens {
            result.staticTokens.removeAll { $0.secret == token.secret }
            result.staticTokens.append(token)
        }
        return result
    }
}

/// What one config source says about `acl`.
public struct ACLFragment: Sendable, Equatable {
    public var enabled: Bool?
    public var defaultPolicy: String?
    public var masterToken: String?
    public var agentToken: String?
    public var defaultToken: String?
    public var staticTokens: [StaticToken] = []

    public init() {}

    public func merged(with other: ACLFragment) -> ACLFragment {
        var result = self
        result.enabled = other.enabled ?? enabled
        result.defaultPolicy = other.defaultPolicy ?? defaultPolicy
        result.masterToken = other.masterToken ?? masterToken
        result.agentToken = other.agentToken ?? agentToken
        result.defaultToken = other.defaultToken ?? defaultToken
        result.staticTokens += other.staticTokens
        return result
    }

    public static func decode(_ reader: ObjectReader) -> ACLFragment {
        var fragment = ACLFragment()
        fragment.enabled = reader.bool("enabled")
        if let policy = reader.string("default_policy") {
            if policy == "allow" || policy == "deny" {
                fragment.defaultPolicy = policy
            } else {
                reader.report("default_policy", "invalid default policy \"\(policy)\" (expected allow or deny)")
            }
        }
        if let tokens = reader.object("tokens") {
            fragment.masterToken = tokens.string("master").flatMap { $0.isEmpty ? nil : $0 }
            fragment.agentToken = tokens.string("agent").flatMap { $0.isEmpty ? nil : $0 }
            fragment.defaultToken = tokens.string("default").flatMap { $0.isEmpty ? nil : $0 }
            tokens.finish()
        }
        for token in reader.objectArray("static_tokens") ?? [] {
            let secret = token.string("secret") ?? ""
            if secret.isEmpty { token.report("secret", "a token needs a non-empty secret") }
            if ["allow", "deny", "manage"].contains(secret) {
                token.report("secret", "\"\(secret)\" is reserved and cannot be a token secret")
            }
            let description = token.string("description") ?? ""
            var rules = ACLRules()
            if let rulesReader = token.object("rules") {
                rules = ACLRules.decode(rulesReader)
                rulesReader.finish()
            }
            token.finish()
            if !secret.isEmpty { fragment.staticTokens.append(StaticToken(secret: secret, description: description, rules: rules)) }
        }
        return fragment
    }
}
