// Intention writes as etcd transactions: one key per intention plus a pair key
// (`intention-pairs/<source>/<destination>` → ID) that must be absent for a create, so two hosts
// cannot create the same pair at once; updates and deletes compare the record's mod revision.

import AgentState
import AgentStore
import Authorization
import ConnectdCore
import EtcdClient
import Foundation

public struct EtcdIntentionWriter: SharedIntentionWriter {
    let client: EtcdClient
    let keys: FleetKeys

    public init(client: EtcdClient, keys: FleetKeys) {
        self.client = client
        self.keys = keys
    }

    public func write(_ intention: Intention, replacing previous: Intention?) async throws(StateError) -> UInt64 {
        let key = keys.full(FleetKeys.intention(intention.id))
        let pair = keys.full(Self.pairKey(intention))
        let value = Data(intention.storedJSON.encoded().utf8)
        var compare: [Compare]
        var success: [RequestOp] = [.put(PutRequest(key: key, value: value))]
        if let previous {
            compare = [.modified(key, at: Int64(previous.modifyIndex))]
            let oldPair = keys.full(Self.pairKey(previous))
            if oldPair != pair {
                compare.append(.absent(pair))
                success += [.delete(DeleteRangeRequest(key: oldPair)), .put(PutRequest(key: pair, value: Data(intention.id.utf8)))]
            }
        } else {
            compare = [.absent(pair), .absent(key)]
            success.append(.put(PutRequest(key: pair, value: Data(intention.id.utf8))))
        }
        let response = try await run(TxnRequest(compare: compare, success: success,
                                                failure: [.range(RangeRequest(key: pair)), .range(RangeRequest(key: key))]))
        guard response.applied else {
            // The client retries a call that timed out on another member; when the first attempt
            // did land, the record is there with exactly this content: that is success, not a duplicate.
            if let stored = response.responses?.last?.responseRange?.values.first, stored.value == value {
                return UInt64(max(0, stored.modRevision?.value ?? response.header?.currentRevision ?? 0))
            }
            throw try await conflict(intention, response, updating: previous != nil)
        }
        return UInt64(max(0, response.header?.currentRevision ?? 0))
    }

    public func delete(_ intention: Intention) async throws(StateError) -> UInt64 {
        let key = keys.full(FleetKeys.intention(intention.id))
        let response = try await run(TxnRequest(
            compare: [.modified(key, at: Int64(intention.modifyIndex))],
            success: [.delete(DeleteRangeRequest(key: key)), .delete(DeleteRangeRequest(key: keys.full(Self.pairKey(intention))))],
            failure: [.range(RangeRequest(key: key))]))
        guard response.applied else {
            // Gone already: a retried call whose first attempt landed (or a delete elsewhere).
            if response.responses?.first?.responseRange?.values.isEmpty ?? false {
                return UInt64(max(0, response.header?.currentRevision ?? 0))
            }
            throw .conflict("intention \(intention.id) was changed on another host meanwhile; read it again and retry")
        }
        return UInt64(max(0, response.header?.currentRevision ?? 0))
    }

    static func pairKey(_ intention: Intention) -> String {
        FleetKeys.intentionPair(source: intention.sourceNS + "/" + intention.sourceName,
                                destination: intention.destinationNS + "/" + intention.destinationName)
    }

    private func run(_ request: TxnRequest) async throws(StateError) -> TxnResponse {
        do throws(EtcdError) {
            return try await client.txn(request)
        } catch {
            throw .persistence(StoreError(key: "intentions", message: "\(error)"))
        }
    }

    /// Why a compare failed: the pair exists (Consul's duplicate error, naming the other), or
    /// the record changed since it was read.
    private func conflict(_ intention: Intention, _ response: TxnResponse, updating: Bool) async throws(StateError) -> StateError {
        let holder = response.responses?.first?.responseRange?.values.first?.value.flatMap { String(data: $0, encoding: .utf8) }
        if let holder, holder != intention.id {
            var summary = "\(intention.sourceNS)/\(intention.sourceName) => \(intention.destinationNS)/\(intention.destinationName) (ID: \(holder))"
            if let record = try? await client.range(RangeRequest(key: keys.full(FleetKeys.intention(holder)))).values.first?.value,
               let json = try? JSONParser.parse(Array(record)), let other = Intention(stored: json) {
                summary = other.summary
            }
            return .intention(.invalid("duplicate intention found: \(summary)"))
        }
        return .conflict(updating ? "intention \(intention.id) was changed on another host meanwhile; read it again and retry"
                                  : "intention \(intention.id) already exists")
    }
}
