// Intention transitions through the API: create, update, delete, each one commit.

import Authorization
import Foundation

extension AgentState {
    public func createIntention(_ input: IntentionInput, now: Date = Date()) throws(StateError) -> Intention {
        var next = snapshot
        let created: Intention
        do throws(IntentionError) {
            (next.intentions, created) = try next.intentions.creating(input, now: now)
        } catch {
            throw .intention(error)
        }
        return try commit(next).intentions.get(created.id) ?? created
    }

    public func updateIntention(_ id: String, _ input: IntentionInput, now: Date = Date()) throws(StateError) {
        var next = snapshot
        do throws(IntentionError) {
            next.intentions = try next.intentions.updating(id, input, now: now)
        } catch {
            throw .intention(error)
        }
        try commit(next)
    }

    public func deleteIntention(_ id: String) throws(StateError) {
        var next = snapshot
        do throws(IntentionError) {
            next.intentions = try next.intentions.deleting(id)
        } catch {
            throw .intention(error)
        }
        try commit(next)
    }
}
