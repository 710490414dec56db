import AgentState
import ConnectdCore
import Foundation
import Testing
@testable import Fleet

/// When the old root may go, and the catalog decoded incrementally, from views built by hand.
struct RotationRulesTests {
    func entry(_ value: some Encodable, revision: Int64 = 5) -> ViewEntry {
        ViewEntry(value: try! JSONEncoder().encode(value), createRevision: revision, modRevision: revision, lease: 0)
    }

    func intermediate(_ node: String, root: String, expires: Date) -> ViewEntry {
        entry(IntermediateRecord(node: node, certPEM: "", rootID: root, notAfter: RFC3339.format(expires)))
    }

    @Test func theOldRootStaysUntilEveryHostWithAnIntermediateAcknowledged() {
        let now = Date()
        var view = FleetView()
        view.entries[FleetKeys.intermediate("a")] = intermediate("a", root: "new", expires: now.addingTimeInterval(86400))
        view.entries[FleetKeys.intermediate("b")] = intermediate("b", root: "new", expires: now.addingTimeInterval(86400))
        view.entries[FleetKeys.ack("a")] = entry(AckRecord(node: "a", activeRootID: "new", intermediateRootID: "new"))
        #expect(FleetAuthority.blockingPrune(view, activeRootID: "new", now: now) == ["b"])
        view.entries[FleetKeys.ack("b")] = entry(AckRecord(node: "b", activeRootID: "old", intermediateRootID: "old"))
        #expect(FleetAuthority.blockingPrune(view, activeRootID: "new", now: now) == ["b"], "an acknowledgement of the old root does not count")
        view.entries[FleetKeys.ack("b")] = entry(AckRecord(node: "b", activeRootID: "new", intermediateRootID: "new"))
        #expect(FleetAuthority.blockingPrune(view, activeRootID: "new", now: now).isEmpty)
        // An unexpired intermediate under the old root keeps it; an expired one or a removed host does not.
        view.entries[FleetKeys.intermediate("c")] = intermediate("c", root: "old", expires: now.addingTimeInterval(60))
        #expect(FleetAuthority.blockingPrune(view, activeRootID: "new", now: now) == ["c"])
        view.entries[FleetKeys.removed("c")] = entry(["Node": "c"])
        #expect(FleetAuthority.blockingPrune(view, activeRootID: "new", now: now).isEmpty)
        view.entries[FleetKeys.removed("c")] = nil
        #expect(FleetAuthority.blockingPrune(view, activeRootID: "new", now: now.addingTimeInterval(120)).isEmpty)
    }

    @Test func theCatalogIsDecodedOnlyWhereItChanged() {
        let decoder = CatalogDecoder()
        var view = FleetView()
        let web = CatalogInstance(node: "n1", nodeID: "id", address: "10.0.0.1", datacenter: "dc1", serviceID: "web-proxy",
                                  serviceName: "web-proxy", kind: "connect-proxy", port: 21000, destinationName: "web")
        let record = CatalogRecord(web)
        view.entries[record.key] = ViewEntry(value: record.encoded, createRevision: 3, modRevision: 3, lease: 7)
        view.entries["catalog/broken/n1/x"] = ViewEntry(value: Data("{".utf8), createRevision: 4, modRevision: 4, lease: 7)
        view.changed["catalog"] = 4
        let first = decoder.catalog(view)
        #expect(first.instances.count == 1 && first.index == 4 && first.proxies(for: "web").first?.modifyIndex == 3)
        var down = web
        down.passing = false
        view.entries[record.key] = ViewEntry(value: CatalogRecord(down).encoded, createRevision: 3, modRevision: 9, lease: 7)
        view.changed["catalog"] = 9
        let second = decoder.catalog(view)
        #expect(second.proxies(for: "web").first?.passing == false && second.proxies(for: "web").first?.modifyIndex == 9)
        view.entries[record.key] = nil
        #expect(decoder.catalog(view).instances.isEmpty)
    }
}
