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
                                  event(.put, "intentions/x", "{}", revision: 6)], scope: "", keys: keys, upTo: 6)
        #expect(touched == ["catalog", "intentions"])
        #expect(view.index(of: "catalog") == 5 && view.index(of: "intentions") == 6 && view.revision == 6)
        // Deleting the newest key moves the index forward (to the delete), never back.
        _ = view.apply([event(.delete, "catalog/db/host-b/db-proxy", revision: 9)], scope: "", keys: keys, upTo: 9)
        #expect(view.entries["catalog/db/host-b/db-proxy"] == nil)
        #expect(view.index(of: "catalog") == 9 && view.index(of: "intentions") == 6)
    }

    @Test func keysOutsideThePrefixAreIgnored() {
        var view = FleetView()
        let foreign = WatchEvent(kind: .put, kv: KeyValue(key: Data("other/v1/catalog/x".utf8), value: Data(), modRevision: 3))
        #expect(view.apply([foreign], scope: "", keys: keys, upTo: 3).isEmpty)
        #expect(view.entries.isEmpty && view.revision == 3)
    }

    @Test func aRelistMarksWhatDifferedAtTheListRevision() {
        var view = FleetView()
        _ = view.apply([event(.put, "catalog/a/n/a", "1", revision: 4)], scope: "catalog/a/", keys: keys, upTo: 4)
        _ = view.apply([event(.put, "ca/roots", "r", revision: 4)], scope: "ca/roots", keys: keys, upTo: 4)
        // While disconnected: catalog/a was deleted, catalog/b created; the roots are unchanged.
        let listed = ["catalog/b/n/b": ViewEntry(value: Data("2".utf8), createRevision: 8, modRevision: 8, lease: 0),
                      "ca/roots": view.entries["ca/roots"]!]
        let scopes: Set<String> = ["catalog/a/", "catalog/b/", "ca/roots"]
        let touched = view.replace(with: listed, scopes: scopes, at: 12)
        #expect(touched == ["catalog"])
        #expect(view.index(of: "catalog") == 12 && view.index(of: "ca") == 4 && view.revision == 12)
        #expect(Set(view.entries.keys) == ["catalog/b/n/b", "ca/roots"])
        #expect(view.retain(scopes).isEmpty)
    }

    @Test func eachScopeKeepsItsOwnRevisionAndTheViewTheLowest() {
        var view = FleetView()
        _ = view.replace(with: [:], scopes: ["intentions/", "catalog/db/"], at: 10)
        _ = view.apply([event(.put, "catalog/db/h/p", "{}", revision: 14)], scope: "catalog/db/", keys: keys, upTo: 14)
        #expect(view.scopes == ["intentions/": 10, "catalog/db/": 14] && view.revision == 10)
        view.progress("intentions/", to: 20)
        #expect(view.revision == 14)
        // A scope added later is listed on its own, at a later revision.
        _ = view.replace(with: ["catalog/web/h/w": ViewEntry(value: Data(), createRevision: 3, modRevision: 3, lease: 0)],
                         scopes: ["catalog/web/"], at: 25)
        #expect(view.scopes["catalog/web/"] == 25 && view.entries.count == 2 && view.index(of: "catalog") == 25)
    }

    @Test func droppingAScopeDropsItsEntriesAndMovesTheIndexOn() {
        var view = FleetView()
        let entry = ViewEntry(value: Data(), createRevision: 3, modRevision: 3, lease: 0)
        _ = view.replace(with: ["catalog/db/h/p": entry, "catalog/web/h/w": entry, "intentions/i": entry],
                         scopes: ["catalog/db/", "catalog/web/", "intentions/"], at: 9)
        view.progress("intentions/", to: 30)
        let touched = view.retain(["catalog/db/", "intentions/"])
        #expect(touched == ["catalog"])
        #expect(Set(view.entries.keys) == ["catalog/db/h/p", "intentions/i"])
        #expect(view.index(of: "catalog") == 30, "the catalog changed: its index moves past every revision seen")
        #expect(view.scopes.keys.sorted() == ["catalog/db/", "intentions/"])
    }

    @Test func scopesAreKeysOrPrefixes() {
        #expect(FleetScope.contains("ca/roots", "ca/roots") && !FleetScope.contains("ca/roots", "ca/roots2"))
        #expect(FleetScope.contains("catalog/db/", "catalog/db/h/p") && !FleetScope.contains("catalog/db/", "catalog/dbx/h/p"))
        #expect(FleetScope.contains("", "anything"))
        #expect(FleetScope.catalog("a/b") == "catalog/a%2Fb/" && FleetScope.service(of: "catalog/a%2Fb/") == "a/b")
        #expect(FleetScope.service(of: "ca/") == nil)
        let holder = FleetScope.base(node: "n", rootHolder: true)
        #expect(FleetScope.minimal(holder.union(["ca/roots", "ca/csr/n"])) == FleetScope.minimal(holder))
        #expect(FleetScope.minimal(holder) == ["ca/", "removed/", "hosts/", "intentions/"])
        let host = FleetScope.base(node: "n", rootHolder: false)
        #expect(host.contains("ca/intermediates/n") && !host.contains(where: { $0.hasPrefix("catalog/") }))
        #expect(!FleetScope.covers(host, "ca/intermediates/m"), "another host's keys are not this host's business")
    }

    @Test func aServiceAskedForStaysWatchedUntilIdle() {
        let interest = FleetInterest(idle: .seconds(60))
        let start = ContinuousClock.now
        #expect(interest.pin(["web", "db"]) && !interest.pin(["web", "db"]))
        #expect(!interest.ask("api", now: start), "not yet listed")
        #expect(interest.services(now: start + .seconds(30)) == ["web", "db", "api"])
        #expect(interest.services(now: start + .seconds(61)) == ["web", "db"])
        interest.setListed(["api"])
        #expect(interest.ask("api"))
    }

    @Test func aViewSavedBeforeScopesHoldsTheWholePrefix() throws {
        let json = #"{"entries":{"ca/roots":{"value":"","createRevision":2,"modRevision":2,"lease":0}},"revision":7,"changed":{"ca":2}}"#
        let view = try JSONDecoder().decode(FleetView.self, from: Data(json.utf8))
        #expect(view.scopes == ["": 7] && view.revision == 7)
    }

    @Test func theViewSurvivesItsFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-view-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = FleetViewFile(directory: directory)
        var view = FleetView()
        _ = view.apply([event(.put, "intentions/x", "{\"a\":1}", revision: 7)], scope: "intentions/", keys: keys, upTo: 8)
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
