// Where intention writes go in fleet mode: to etcd, shared by every host. The state sees the
// result when the fleet view brings it back (so every host, this one too, decides from etcd).

import Authorization

public protocol SharedIntentionWriter: Sendable {
    /// Writes `intention`, new when `previous` is nil, else replacing `previous` (compared by its
    /// `modifyIndex`, the record's etcd revision). Returns the revision of the write.
    func write(_ intention: Intention, replacing previous: Intention?) async throws(StateError) -> UInt64
    /// Deletes `intention` (compared by its `modifyIndex`). Returns the revision of the write.
    func delete(_ intention: Intention) async throws(StateError) -> UInt64
}
