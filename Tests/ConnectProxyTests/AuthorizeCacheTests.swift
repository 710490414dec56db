import Testing
@testable import ConnectProxy

/// The proxy's authorize cache: used only while the intentions watch is current, emptied by
/// every change it reports, keyed by the client certificate (URI and serial).
struct AuthorizeCacheTests {
    let allow = (authorized: true, reason: "ACLs disabled, access is allowed by default")
    let uri = "spiffe://example.consul/ns/default/dc/dc1/svc/web"

    @Test func nothingIsCachedUntilTheIntentionsWatchIsCurrent() {
        let runtime = ProxyRuntime()
        runtime.cache(decision: allow, for: uri, serial: "01", target: "db", index: runtime.intentionsIndex)
        #expect(runtime.cachedDecision(for: uri, serial: "01", target: "db") == nil)
        runtime.intentions(at: "7")
        runtime.cache(decision: allow, for: uri, serial: "01", target: "db", index: runtime.intentionsIndex)
        #expect(runtime.cachedDecision(for: uri, serial: "01", target: "db")?.authorized == true)
        #expect(runtime.cachedDecision(for: uri, serial: "02", target: "db") == nil, "another certificate asks the agent")
        #expect(runtime.cachedDecision(for: uri, serial: "01", target: "api") == nil, "another target asks the agent")
    }

    @Test func aChangeOrAFailedWatchEmptiesTheCache() {
        let runtime = ProxyRuntime()
        runtime.intentions(at: "7")
        runtime.cache(decision: allow, for: uri, serial: "01", target: "db", index: "7")
        runtime.intentions(at: "7")
        #expect(runtime.cachedDecision(for: uri, serial: "01", target: "db") != nil, "the same index keeps it")
        runtime.intentions(at: "8")
        #expect(runtime.cachedDecision(for: uri, serial: "01", target: "db") == nil, "a change drops it")
        runtime.cache(decision: (false, "deny"), for: uri, serial: "01", target: "db", index: "8")
        #expect(runtime.cachedDecision(for: uri, serial: "01", target: "db")?.authorized == false, "denials are cached too")
        runtime.intentions(at: nil)
        #expect(runtime.cachedDecision(for: uri, serial: "01", target: "db") == nil, "a failed watch drops it")
        runtime.intentions(at: "8")
        #expect(runtime.cachedDecision(for: uri, serial: "01", target: "db") == nil, "and it stays empty")
    }

    @Test func anAnswerAskedForBeforeAChangeIsNotCachedAfterIt() {
        let runtime = ProxyRuntime()
        runtime.intentions(at: "7")
        let askedAt = runtime.intentionsIndex
        runtime.intentions(at: "8")
        runtime.cache(decision: allow, for: uri, serial: "01", target: "db", index: askedAt)
        #expect(runtime.cachedDecision(for: uri, serial: "01", target: "db") == nil)
    }
}
