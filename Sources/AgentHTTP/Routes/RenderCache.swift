// Shares one rendering among every waiter woken by the same change: a burst of thousands of
// hash-blocked watchers of one proxy costs one render, not thousands.

import AgentState
import ConnectdCore
import Synchronization

final class RenderCache: Sendable {
    private struct Entry {
        var index: UInt64
        var body: JSONValue
        var hash: String
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let capacity: Int

    init(capacity: Int = 4096) { self.capacity = capacity }

    /// The body for `key` at `index`, rendering it with `render` when not cached. Errors are not cached.
    /// The index covers everything a render reads (state and agent settings), so equal indexes
    /// render equal bodies.
    func body(key: String, index: UInt64, render: () throws(APIError) -> (JSONValue, String)) throws(APIError) -> (JSONValue, String) {
        if let entry = entries.withLock({ $0[key] }), entry.index == index { return (entry.body, entry.hash) }
        let (body, hash) = try render()
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = Entry(index: index, body: body, hash: hash)
        }
        return (body, hash)
    }
}
