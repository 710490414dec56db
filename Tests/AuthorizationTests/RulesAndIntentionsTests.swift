import AgentConfig
import AgentState
import AgentStore
import Authorization
import ConnectdCore
import Foundation
import Logging
import Testing

func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("connectd-authz-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func rules(_ json: String) throws -> ACLRules {
    let sink = ProblemSink(file: "t.json")
    let reader = try #require(ObjectReader.object(try JSONParser.parse(Array(json.utf8)), path: "rules", sink: sink, matching: .strictSnakeCase))
    let parsed = ACLRules.decode(reader)
    reader.finish()
    #expect(sink.problems.isEmpty, "\(sink.problems)")
    return parsed
}

@Suite struct RulesTests {
    @Test func theMostSpecificRuleWins() throws {
        let parsed = try rules(#"{"service": {"web": {"policy": "deny"}}, "service_prefix": {"": {"policy": "read"}, "we": {"policy": "write"}}, "operator": "read"}"#)
        let authorizer = Authorizer(principal: .rules(parsed), defaultAllow: false)
        #expect(!authorizer.serviceRead("web"), "exact deny beats a prefix write")
        #expect(authorizer.serviceWrite("west"), "the longer prefix wins")
        #expect(authorizer.serviceRead("db") && !authorizer.serviceWrite("db"))
        #expect(authorizer.operatorRead() && !authorizer.operatorWrite())
        #expect(authorizer.intentionRead("db") && !authorizer.intentionWrite("db"))
        #expect(!authorizer.agentRead("node"), "no agent rule: the default (deny)")
        #expect(Authorizer(principal: .rules(ACLRules()), defaultAllow: true).agentWrite("node"))
    }

    @Test func badRulesNameTheKey() throws {
        let sink = ProblemSink(file: "acl.json")
        let reader = try #require(ObjectReader.object(try JSONParser.parse(Array(#"{"service": {"web": {"policy": "admin"}}, "servic": {}}"#.utf8)),
                                                      path: "acl.static_tokens[0].rules", sink: sink, matching: .strictSnakeCase))
        _ = ACLRules.decode(reader)
        reader.finish()
        let text = sink.problems.map(\.description)
        #expect(text.contains("acl.json: acl.static_tokens[0].rules.service.web.policy: invalid policy \"admin\" (expected read, write or deny)"))
        #expect(text.contains { $0.contains("unknown key \"servic\"") && $0.contains("did you mean \"service\"") })
    }

    @Test func tokensResolve() throws {
        let noProxies: [String: ManagedProxy] = [:]
        var settings = ACLSettings()
        settings.enabled = true
        settings.defaultAllow = false
        settings.masterToken = "root"
        settings.staticTokens = [StaticToken(secret: "reader", description: "", rules: try rules(#"{"service_prefix": {"": {"policy": "read"}}}"#))]
        #expect(try TokenResolver.resolve("root", settings: settings, proxies: noProxies, nodeName: "n").seesEverything)
        #expect(try TokenResolver.resolve("reader", settings: settings, proxies: noProxies, nodeName: "n").serviceRead("x"))
        #expect(try !TokenResolver.resolve("", settings: settings, proxies: noProxies, nodeName: "n").serviceRead("x"))
        #expect(throws: ACLError.notFound) { try TokenResolver.resolve("bogus", settings: settings, proxies: noProxies, nodeName: "n") }
        settings.enabled = false
        #expect(try TokenResolver.resolve("bogus", settings: settings, proxies: noProxies, nodeName: "n").seesEverything)
    }
}

@Suite struct IntentionStoreTests {
    func input(_ source: String, _ destination: String, _ action: String = "allow") -> IntentionInput {
        var input = IntentionInput()
        input.sourceName = source
        input.destinationName = destination
        input.action = action
        return input
    }

    @Test func precedenceAsConsul() throws {
        let now = Date()
        let cases: [(String, String, Int)] = [("web", "db", 9), ("*", "db", 8), ("web", "*", 6), ("*", "*", 5)]
        for (source, destination, precedence) in cases {
            #expect(Intention(id: "x", sourceName: source, destinationName: destination, action: "allow", now: now).precedence == precedence)
        }
        var all = Intention(id: "x", sourceName: "*", destinationName: "*", action: "allow", now: now)
        all.sourceNS = "*"
        all.destinationNS = "*"
        #expect(all.precedence == 1)
    }

    @Test func timestampsSurviveTheTextRoundTripExactly() throws {
        // Every microsecond of a second near today: a Date cannot hold each one exactly.
        let base = Date(timeIntervalSince1970: 1_796_000_000)
        for micro in stride(from: 0, to: 1_000_000, by: 997) {
            let stamp = Timestamp(base.addingTimeInterval(Double(micro) / 1_000_000))
            let reparsed = try #require(Timestamp(text: stamp.text))
            #expect(reparsed == stamp, "\(stamp.text)")
            #expect(Timestamp(reparsed.date) == stamp)
        }
        #expect(Timestamp(text: "2026-11-29T10:34:27.905903Z")?.text == "2026-11-29T10:34:27.905903Z")
        #expect(Timestamp(text: "2026-11-29T10:34:27.9059031234Z")?.text == "2026-11-29T10:34:27.905903Z")
        #expect(Timestamp(text: "2026-11-29T10:34:27Z")?.text == "2026-11-29T10:34:27Z")
        #expect(Timestamp(text: "2026-11-29T10:34:27.Z") == nil)
        #expect(Timestamp(text: "2026-11-29T10:34:27.5x") == nil)
    }

    @Test func persistsOrdersAndRejectsDuplicates() async throws {
        let dir = temporaryDirectory()
        let state = try openState(dir)
        let exact = try await state.createIntention(input("web", "db", "deny"))
        let wildcard = try await state.createIntention(input("*", "db"))
        await #expect(throws: StateError.self) { try await state.createIntention(input("web", "db")) }
        let table = state.snapshot.intentions
        #expect(table.matches(destination: "db").map(\.id) == [exact.id, wildcard.id])
        #expect(table.decide(destination: "db", sourceNamespace: "default", sourceService: "web")?.id == exact.id)
        #expect(table.decide(destination: "db", sourceNamespace: "default", sourceService: "api")?.id == wildcard.id)
        #expect(table.decide(destination: "cache", sourceNamespace: "default", sourceService: "api") == nil)
        #expect(exact.createIndex > 0 && exact.createIndex == exact.modifyIndex, "stamped with the commit's revision")
        let reopened = try openState(dir)
        #expect(reopened.snapshot.intentions.list().map(\.apiJSON) == table.list().map(\.apiJSON))
        #expect(reopened.snapshot.intentions.get(exact.id)?.createIndex == exact.createIndex)
        #expect(reopened.snapshot.intentions.index >= table.index, "the index never goes back across a restart")
        try await reopened.deleteIntention(exact.id)
        #expect(reopened.snapshot.intentions.decide(destination: "db", sourceNamespace: "default", sourceService: "web")?.id == wildcard.id)
    }

    @Test func configIntentionsKeepTheirIDs() throws {
        var table = IntentionTable()
        table = try table.applyingConfig([IntentionDefinition(sourceName: "web", destinationName: "db", action: "deny")]).table
        let id = try #require(table.list().first?.id)
        table = try table.applyingConfig([IntentionDefinition(sourceName: "web", destinationName: "db", action: "allow")]).table
        #expect(table.list().map(\.id) == [id])
        #expect(table.list().first?.action == "allow")
        #expect(throws: IntentionError.self) { try table.deleting(id) }
        table = try table.applyingConfig([]).table
        #expect(table.list().isEmpty)
    }

    func openState(_ dir: String) throws -> AgentState {
        try AgentState(store: try FileStore(dataDir: dir), allocator: PortAllocator(range: nil, probe: BindPortProbe(address: "127.0.0.1")),
                       logger: Logger(label: "t"))
    }
}
