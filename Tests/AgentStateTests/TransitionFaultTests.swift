import AgentConfig
import AgentState
import AgentStore
import ConnectdCore
import Foundation
import Logging
import Testing

/// Every transition is one transaction: whichever file write of it fails, the call either
/// throws with memory unchanged and the disk (after a restart) exactly as before, or it holds,
/// in memory and after a restart alike.
@Suite struct TransitionFaultTests {
    typealias Transition = @Sendable (AgentState) async throws -> Void

    static func disk(_ dir: String) throws -> [String: JSONValue] {
        Dictionary(uniqueKeysWithValues: try FileStore(dataDir: dir).list(prefix: "").map { ($0.key, $0.value) })
    }

    static func allocator() -> PortAllocator { PortAllocator(range: 20000...20010, probe: FakeProbe()) }

    static func configuration(_ services: [ServiceDefinition], _ intentions: [IntentionDefinition]) -> AgentState.ConfigurationChange {
        var ca = CASettings()
        ca.leafCertTTL = .seconds(3600 * 24)
        return AgentState.ConfigurationChange(services: services, intentions: intentions, caSettings: ca, allocator: allocator())
    }

    static let cases: [(String, Transition, Transition)] = [
        ("register with a proxy", { _ in }, { state in try await state.register(service("api")) }),
        ("reload", { state in
            try await state.applyConfiguration(configuration([service("web")], [IntentionDefinition(sourceName: "web", destinationName: "db", action: "allow")]))
        }, { state in
            try await state.applyConfiguration(configuration(
                [service("db"), service("cache", proxy: nil)],
                [IntentionDefinition(sourceName: "web", destinationName: "db", action: "deny"),
                 IntentionDefinition(sourceName: "*", destinationName: "cache", action: "deny")]))
        }),
        ("CA rotation", { _ in }, { state in
            var settings = CASettings()
            settings.generateKey = true
            _ = try await state.applyCAConfiguration(settings)
        }),
    ]

    @Test(arguments: 0..<3)
    func everyFailedWriteLeavesAllOrNothing(caseIndex: Int) async throws {
        let (name, prepare, change) = Self.cases[caseIndex]
        var refusals = 0
        var successes = 0
        for n in 1...12 {
            let dir = temporaryDirectory()
            let faults = StoreFaults()
            let store = try FileStore(dataDir: dir, faults: faults)
            let state = try AgentState(store: store, allocator: Self.allocator(), logger: Logger(label: "test"))
            try await prepare(state)
            let before = state.snapshot
            let diskBefore = try Self.disk(dir)
            faults.failWrite(n)
            let refused: Bool
            do {
                try await change(state)
                refused = false
            } catch {
                refused = true
            }
            faults.disarm()
            if refused {
                refusals += 1
                #expect(state.snapshot == before, "\(name), write \(n): memory changed by a refused call")
                #expect(Dictionary(uniqueKeysWithValues: try store.list(prefix: "").map { ($0.key, $0.value) }) == diskBefore)
                #expect(try Self.disk(dir) == diskBefore, "\(name), write \(n): disk changed by a refused call")
            } else {
                successes += 1
                #expect(state.snapshot != before, "\(name), write \(n)")
                let held = Dictionary(uniqueKeysWithValues: try store.list(prefix: "").map { ($0.key, $0.value) })
                #expect(held != diskBefore, "\(name), write \(n): the change reached the store")
                #expect(try Self.disk(dir) == held, "\(name), write \(n): after a restart the disk holds the change")
            }
        }
        #expect(refusals >= 1 && successes >= 1, "\(name): \(refusals) refused, \(successes) held")
    }
}
