import EtcdClient
import Foundation
import Testing
@testable import Fleet

/// The view's bookkeeping: what a watch event or a re-list does to its entries and to each
/// section's index (the `X-Consul-Index` clients see), without etcd.
struct FleetViewTests {
    let keys = FleetKeys(keyPrefix: "connectd/")

    func event(_ kind: WatchEvent.Kind, _ key: String, _ value: String = "", revision: Int64, created: Int64? = nil) -> WatchEvent {
        WatchEvent(kind: kind, kv: KeyValue(key: keys.full(key), value: Data(value.utf8), createRevision: created ?? revision,
                                             modRevision: revision))
    }

    @Test func eventsMoveOnlyTheirSectionAndADeleteMovesItForward() {
        var view = FleetView()
        #expect(view.index(of: "catalog") == 1, "an empty section's index is 1, never 0")
        let touched = view.apply([event(.put, "catalog/db/host-b/db-proxy", "{}", revision: 5),
                                  event(.put, "intentions/x", "{}", revision: 6)], keys: keys, upTo: 6)
        #expect(touched == ["catalog", "intentions"])
        #expect(view.index(of: "catalog") == 5 && view.index(of: "intentions") == 6 && view.revision == 6)
        // Deleting the newest key moves the index forward (to the delete), never back.
        _ = view.apply([event(.delete, "catalog/db/host-b/db-proxy", revision: 9)], keys: keys, upTo: 9)
        #expect(view.entries["catalog/db/host-b/db-proxy"] == nil)
        #expect(view.index(of: "catalog") == 9 && view.index(of: "intentions") == 6)
    }

    @Test func keysOutsideThePrefixAreIgnored() {
        var view = FleetView()
        let foreign = WatchEvent(kind: .put, kv: KeyValue(key: Data("other/v1/catalog/x".utf8), value: Data(), modRevision: 3))
        #expect(view.apply([foreign], keys: keys, upTo: 3).isEmpty)
        #expect(view.entries.isEmpty && view.revision == 3)
    }

    @Test func aRelistMarksWhatDifferedAtTheListRevision() {
        var view = FleetView()
        _ = view.apply([event(.put, "catalog/a/n/a", "1", revision: 4), event(.put, "ca/roots", "r", revision: 4)], keys: keys, upTo: 4)
        // While disconnected: catalog/a was deleted, catalog/b created; the roots are unchanged.
        let listed = ["catalog/b/n/b": ViewEntry(value: Data("2".utf8), createRevision: 8, modRevision: 8, lease: 0),
                      "ca/roots": view.entries["ca/roots"]!]
        let touched = view.replace(with: listed, at: 12)
        #expect(touched == ["catalog"])
        #expect(view.index(of: "catalog") == 12 && view.index(of: "ca") == 4 && view.revision == 12)
        #expect(Set(view.entries.keys) == ["catalog/b/n/b", "ca/roots"])
    }

    @Test func theViewSurvivesItsFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-view-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = FleetViewFile(directory: directory)
        var view = FleetView()
        _ = view.apply([event(.put, "intentions/x", "{\"a\":1}", revision: 7)], keys: keys, upTo: 8)
        try file.save(view)
        #expect(file.load { Issue.record("\($0)") } == view)
        let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: file.path))
        var problem: String?
        #expect(file.load { problem = $0 } == nil)
        #expect(problem?.contains("view.json") == true)
    }

    @Test func namesAreOnePathComponent() {
        #expect(FleetKeys.catalog(service: "a/b", node: "n%1", id: "x") == "catalog/a%2Fb/n%251/x")
        #expect(FleetKeys.catalogNode("catalog/a%2Fb/n%251/x") == "n%1")
        #expect(FleetKeys.catalogNode("hosts/n") == nil)
        #expect(FleetKeys.section("ca/intermediates/n") == "ca")
        #expect(keys.relative(keys.full("hosts/n")) == "hosts/n")
    }
}
