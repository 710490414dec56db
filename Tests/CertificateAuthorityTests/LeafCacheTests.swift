import AgentConfig
import AgentState
import AgentStore
import CertificateAuthority
import Foundation
import Testing

@Suite struct LeafCacheTests {
    func cache(_ ca: TestCA, jitter: Duration = .zero) -> LeafCache {
        let state = ca.state
        return LeafCache(authority: { state.snapshot.ca }, rootChangeJitter: jitter, datacenter: { "dc1" })
    }

    @Test func cachedPerServiceAndToken() async throws {
        let leaves = cache(try await openCA(temporaryDirectory()))
        let key = LeafCache.Key(service: "web", token: "a")
        let (first, firstHit) = try await leaves.fetch(key, condition: .none, wait: .seconds(1))
        let (again, hit) = try await leaves.fetch(key, condition: .none, wait: .seconds(1))
        #expect(!firstHit && hit && again == first)
        let (other, _) = try await leaves.fetch(LeafCache.Key(service: "web", token: "b"), condition: .none, wait: .seconds(1))
        #expect(other.serial != first.serial && other.privateKeyPEM != first.privateKeyPEM)
        // An older index answers at once with the current certificate.
        let (older, _) = try await leaves.fetch(key, condition: .index(first.index - 1), wait: .seconds(5))
        #expect(older == first)
    }

    @Test func aBlockedWatcherWakesWithTheRenewal() async throws {
        let ca = try await openCA(temporaryDirectory())
        let leaves = cache(ca)
        let key = LeafCache.Key(service: "web", token: "")
        let start = Date()
        let (first, _) = try await leaves.fetch(key, condition: .none, wait: .seconds(1), now: start)
        let waiter = Task { try await leaves.fetch(key, condition: .index(first.index), wait: .seconds(30)).0 }
        try await Task.sleep(for: .milliseconds(100))
        // Nothing due yet.
        leaves.renewDue(now: start.addingTimeInterval(60))
        // 90 % of the lifetime is always past the renewal point.
        leaves.renewDue(now: start.addingTimeInterval(0.9 * 72 * 3600 + 60))
        let renewed = try await waiter.value
        #expect(renewed.index > first.index)
        #expect(renewed.privateKeyPEM != first.privateKeyPEM, "a fresh key per issuance")
    }

    @Test func aRootChangeReissuesAndWakesWatchers() async throws {
        let ca = try await openCA(temporaryDirectory())
        let leaves = cache(ca)
        let key = LeafCache.Key(service: "web", token: "")
        let (first, _) = try await leaves.fetch(key, condition: .none, wait: .seconds(1))
        let waiter = Task { try await leaves.fetch(key, condition: .index(first.index), wait: .seconds(30)).0 }
        var settings = CASettings()
        settings.generateKey = true
        try await ca.applyConfiguration(settings)
        leaves.rootsChanged()
        leaves.renewDue()
        let reissued = try await waiter.value
        #expect(reissued.authorityKeyID == ca.activeSigningKeyID)
        #expect(reissued.authorityKeyID != first.authorityKeyID)
    }

    @Test func waitsEndAtTheDeadlineAndOnShutdown() async throws {
        let leaves = cache(try await openCA(temporaryDirectory()))
        let key = LeafCache.Key(service: "web", token: "")
        let (first, _) = try await leaves.fetch(key, condition: .none, wait: .seconds(1))
        let clock = ContinuousClock()
        let started = clock.now
        let (timedOut, _) = try await leaves.fetch(key, condition: .index(first.index), wait: .milliseconds(300))
        #expect(timedOut == first)
        #expect(clock.now - started >= .milliseconds(300))
        let waiter = Task { try await leaves.fetch(key, condition: .index(first.index), wait: .seconds(600)).0 }
        try await Task.sleep(for: .milliseconds(100))
        leaves.shutdown()
        #expect(try await waiter.value == first)
    }
}
