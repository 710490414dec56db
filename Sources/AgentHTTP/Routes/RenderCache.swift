// Shares one rendering among every waiter woken by the same change: a burst of thousands of
// hash-blocked watchers of one proxy costs one render, not thousands.

import AgentState
import AgentStore
import ConnectdCore
import Synchronization

final class RenderCache: Sendable {
    private struct Entry {
        var index: UInt64
        var bytes: [UInt8]
        var hash: String
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let capacity: Int

    init(capacity: Int = 4096) { self.capacity = capacity }

    /// The encoded body and its hash for `key` at `index`, if rendered before.
    func cached(key: String, index: UInt64, pretty: Bool) -> (bytes: [UInt8], hash: String)? {
        let fullKey = pretty ? key + "\u{0}pretty" : key
        guard let entry = entries.withLock({ $0[fullKey] }), entry.index == index else { return nil }
        return (entry.bytes, entry.hash)
    }

    /// The encoded body and its hash for `key` at `index`, rendering with `render` when not cached.
    /// Errors are not cached. The index covers everything a render reads (state and agent
    /// settings), so equal indexes render equal bodies.
    func body(key: String, index: UInt64, pretty: Bool,
              render: () throws(APIError) -> (JSONValue, String)) throws(APIError) -> (bytes: [UInt8], hash: String) {
        if let hit = cached(key: key, index: index, pretty: pretty) { return hit }
        let fullKey = pretty ? key + "\u{0}pretty" : key
        let (body, hash) = try render()
        let bytes = Array(body.encoded(pretty: pretty).utf8)
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[fullKey] = Entry(index: index, bytes: bytes, hash: hash)
        }
        return (bytes, hash)
    }
}
