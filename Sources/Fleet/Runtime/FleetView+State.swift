// Reading the agent's shared sections out of a view: intentions (with etcd's revisions as their
// indexes) and the catalog; the CA is read by `FleetAuthority.caState`.

import Authorization
import ConnectdCore

extension FleetView {
    /// Every intention record in the view; records that do not decode are skipped and named.
    func intentions(unusable: (String) -> Void = { _ in }) -> IntentionTable {
        var list: [Intention] = []
        for (key, entry) in entries(under: "intentions/") {
            guard let json = try? JSONParser.parse(Array(entry.value)), var intention = Intention(stored: json) else {
                unusable(key)
                continue
            }
            intention.createIndex = UInt64(max(0, entry.createRevision))
            intention.modifyIndex = UInt64(max(0, entry.modRevision))
            list.append(intention)
        }
        return IntentionTable(shared: list, index: index(of: "intentions"))
    }
}
