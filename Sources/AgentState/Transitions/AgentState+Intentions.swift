// Intention transitions through the API: create, update, delete. On a single host each is one
// commit; in fleet mode each is one etcd transaction, seen here when the fleet view brings it back.

import Authorization
import Foundation

extension AgentState {
    public func createIntention(_ input: IntentionInput, now: Date = Date()) async throws(StateError) -> Intention {
        var next = snapshot
        let created: Intention
        do throws(IntentionError) {
            (next.intentions, created) = try next.intentions.creating(input, now: now)
        } catch {
            throw .intention(error)
        }
        if let sharedWriter {
            try await writeShared(sharedWriter) { writer throws(StateError) in try await writer.write(created, replacing: nil) }
            return snapshot.intentions.get(created.id) ?? created
        }
        return try commit(next).intentions.get(created.id) ?? created
    }

    public func updateIntention(_ id: String, _ input: IntentionInput, now: Date = Date()) async throws(StateError) {
        let current = snapshot
        var next = current
        do throws(IntentionError) {
            next.intentions = try next.intentions.updating(id, input, now: now)
        } catch {
            throw .intention(error)
        }
        if let sharedWriter, let previous = current.intentions.get(id), var updated = next.intentions.get(id) {
            (updated.createIndex, updated.modifyIndex) = (previous.createIndex, previous.modifyIndex)
            try await writeShared(sharedWriter) { writer throws(StateError) in try await writer.write(updated, replacing: previous) }
            return
        }
        try commit(next)
    }

    public func deleteIntention(_ id: String) async throws(StateError) {
        let current = snapshot
        var next = current
        do throws(IntentionError) {
            next.intentions = try next.intentions.deleting(id)
        } catch {
            throw .intention(error)
        }
        if let sharedWriter, let previous = current.intentions.get(id) {
            try await writeShared(sharedWriter) { writer throws(StateError) in try await writer.delete(previous) }
            return
        }
        try commit(next)
    }
}
