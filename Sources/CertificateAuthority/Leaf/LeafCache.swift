// Leaf certificates cached per (service, token), renewed before they expire and re-issued after a
// root change; each entry has its own watch, so a renewal wakes exactly that entry's watchers.
// The cache is host-local and sits above the state: it signs from the CA state it is handed.

import AgentStore
import Foundation
import Synchronization

public final class LeafCache: Sendable {
    /// Why a leaf was signed (reported to ``init(authority:rootChangeJitter:datacenter:signed:)``'s `signed`).
    public enum Signing: String, Sendable, CaseIterable {
        /// The first certificate for a (service, token).
        case new
        /// A replacement before expiry, under the same root.
        case renewed
        /// A replacement because the root changed.
        case reissued
    }

    public struct Key: Hashable, Sendable {
        public var service: String
        public var token: String

        public init(service: String, token: String) {
            self.service = service
            self.token = token
        }
    }

    private struct Entry {
        var cert: IssuedCert
        let watch: IndexWatch
        /// When to issue a replacement: a random point in 60–90 % of the lifetime, or sooner
        /// after a root change.
        var renewAt: Date
        var lastUsed: Date
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var isShutDown = false
        var rootChangeJitter: Duration
        var lastIndex: UInt64 = 0
    }

    private let authority: @Sendable () -> CAState
    private let datacenter: @Sendable () -> String
    private let signed: @Sendable (Signing) -> Void
    private let state: Mutex<State>

    /// - Parameters:
    ///   - authority: the CA state now (read at each issuance, without a lock a rotation holds).
    ///   - datacenter: the agent's datacenter, read at each issuance (it can change on reload).
    ///   - rootChangeJitter: the longest random delay before re-issuing after a root change.
    ///   - signed: told of every certificate signed, with the reason (for metrics).
    public init(authority: @escaping @Sendable () -> CAState, rootChangeJitter: Duration,
                datacenter: @escaping @Sendable () -> String, signed: @escaping @Sendable (Signing) -> Void = { _ in }) {
        self.authority = authority
        self.signed = signed
        self.datacenter = datacenter
        state = Mutex(State(rootChangeJitter: rootChangeJitter))
    }

    /// Signs a new leaf for `key` with the next issue index: microseconds since the epoch, made
    /// strictly increasing, so an index a client saw before a restart is never handed out again.
    private func issue(_ key: Key, now: Date) throws(CAError) -> IssuedCert {
        let index = state.withLock { state -> UInt64 in
            let clock = UInt64(max(0, Date().timeIntervalSince1970 * 1_000_000))
            state.lastIndex = max(state.lastIndex + 1, clock)
            return state.lastIndex
        }
        return try CAPolicy.issueLeaf(authority(), service: key.service, datacenter: datacenter(), index: index, now: now)
    }

    public func setRootChangeJitter(_ jitter: Duration) { state.withLock { $0.rootChangeJitter = jitter } }

    public var count: Int { state.withLock { $0.entries.count } }

    /// When the soonest-expiring cached certificate expires; nil when the cache is empty.
    public var soonestExpiry: Date? { state.withLock { $0.entries.values.map(\.cert.validBefore).min() } }

    /// Blocking queries parked on the cache's certificates.
    public var waiterCount: Int { state.withLock { $0.entries.values.reduce(0) { $0 + $1.watch.waiterCount } } }

    /// Whether every cached certificate was signed under `keyID` (`CAState.activeSigningKeyID`).
    public func allSigned(by keyID: String) -> Bool {
        state.withLock { $0.entries.values.allSatisfy { $0.cert.authorityKeyID == keyID } }
    }

    /// The cached certificate for `key`, issuing one on a miss. With `.index(n)` and a cached
    /// certificate at or below `n`, waits (up to `wait`) for the next renewal or re-issue.
    /// Returns the certificate and whether it came from the cache without waiting.
    public func fetch(_ key: Key, condition: BlockingCondition, wait: Duration, now: Date = Date()) async throws(CAError) -> (IssuedCert, hit: Bool) {
        if let (cert, watch) = lookup(key, now: now) {
            guard case .index(let index) = condition, index > 0, cert.index <= index else { return (cert, true) }
            let result = (try? await BlockingQuery.run(watch: watch, condition: condition, wait: wait) { () -> IssuedCert in
                self.current(key) ?? cert
            }) ?? cert
            return (result, false)
        }
        let issued = try issue(key, now: now)
        signed(.new)
        let cert = state.withLock { state -> IssuedCert in
            // Another request may have issued one meanwhile: keep a single entry.
            if let existing = state.entries[key] { return existing.cert }
            let watch = IndexWatch(index: issued.index)
            if state.isShutDown { watch.shutdown() }
            state.entries[key] = Entry(cert: issued, watch: watch, renewAt: Self.renewalTime(issued), lastUsed: now)
            return issued
        }
        return (cert, false)
    }

    /// The cached certificate for `key`, if any (counts as a use).
    public func cached(_ key: Key, now: Date = Date()) -> IssuedCert? { lookup(key, now: now)?.0 }

    /// The cached certificate for `key` and the watch its renewals and re-issues move, for a
    /// caller that blocks by callback; nil on a miss (``fetch(_:condition:wait:now:)`` issues).
    public func cachedWithWatch(_ key: Key, now: Date = Date()) -> (cert: IssuedCert, watch: IndexWatch)? {
        lookup(key, now: now)
    }

    /// The certificate cached for `key` now, without counting as a use.
    public func current(_ key: Key) -> IssuedCert? { state.withLock { $0.entries[key]?.cert } }

    private func lookup(_ key: Key, now: Date) -> (IssuedCert, IndexWatch)? {
        state.withLock { state in
            guard state.entries[key] != nil else { return nil }
            state.entries[key]!.lastUsed = now
            let entry = state.entries[key]!
            return (entry.cert, entry.watch)
        }
    }

    /// A random instant in 60–90 % of the certificate's lifetime.
    static func renewalTime(_ cert: IssuedCert) -> Date {
        let lifetime = cert.validBefore.timeIntervalSince(cert.validAfter)
        return cert.validAfter.addingTimeInterval(lifetime * Double.random(in: 0.6..<0.9))
    }

    /// Marks certificates signed by a key other than the active root's for re-issue within the jitter.
    public func rootsChanged(now: Date = Date()) {
        let activeKeyID = authority().activeSigningKeyID
        state.withLock { state in
            let jitter = state.rootChangeJitter.timeInterval
            for key in state.entries.keys where state.entries[key]!.cert.authorityKeyID != activeKeyID {
                let due = now.addingTimeInterval(jitter > 0 ? Double.random(in: 0..<jitter) : 0)
                state.entries[key]!.renewAt = min(state.entries[key]!.renewAt, due)
            }
        }
    }

    /// Replaces every certificate whose renewal time has come and wakes its watchers. Entries
    /// nobody asked for during a whole lifetime (and nobody waits on) are dropped instead.
    /// Returns the next renewal time.
    @discardableResult
    public func renewDue(now: Date = Date()) -> Date? {
        let due: [Key] = state.withLock { state in
            var due: [Key] = []
            for (key, entry) in state.entries where entry.renewAt <= now {
                let lifetime = entry.cert.validBefore.timeIntervalSince(entry.cert.validAfter)
                if now.timeIntervalSince(entry.lastUsed) > lifetime && entry.watch.waiterCount == 0 {
                    state.entries.removeValue(forKey: key)
                } else {
                    due.append(key)
                }
            }
            return due
        }
        let activeKeyID = authority().activeSigningKeyID
        for key in due {
            let previousKeyID = state.withLock { $0.entries[key]?.cert.authorityKeyID }
            guard let issued = try? issue(key, now: now) else {
                // Keep the current certificate and try again shortly (the disk may be full).
                state.withLock { $0.entries[key]?.renewAt = now.addingTimeInterval(30) }
                continue
            }
            let watch: IndexWatch? = state.withLock { state in
                guard state.entries[key] != nil else { return nil }
                state.entries[key]!.cert = issued
                state.entries[key]!.renewAt = Self.renewalTime(issued)
                return state.entries[key]!.watch
            }
            signed(previousKeyID == activeKeyID ? .renewed : .reissued)
            watch?.advance(to: issued.index)
        }
        return state.withLock { $0.entries.values.map(\.renewAt).min() }
    }

    /// Releases every waiter; later waits return at once.
    public func shutdown() {
        let watches = state.withLock { state in
            state.isShutDown = true
            return state.entries.values.map(\.watch)
        }
        for watch in watches { watch.shutdown() }
    }
}
