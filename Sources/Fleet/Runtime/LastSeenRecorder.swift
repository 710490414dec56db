// On a root holder: when a host's `hosts/<node>` key goes (its lease expired, or it was
// removed), writes `seen/<node>` with the time, so `connectd fleet status` can say when a host
// that is gone was last seen (a live host is seen now: its lease is kept alive). One write per
// host that goes, none while hosts are up.

import ConnectdCore
import EtcdClient
import Foundation
import Logging

actor LastSeenRecorder {
    private let client: EtcdClient
    private let keys: FleetKeys
    private let logger: Logger
    /// Host keys of the last view (nil before the first).
    private var known: [String: ViewEntry]?

    init(client: EtcdClient, keys: FleetKeys, logger: Logger) {
        self.client = client
        self.keys = keys
        self.logger = logger
    }

    func note(_ view: FleetView, now: Date = Date()) async {
        let hosts = view.entries.filter { $0.key.hasPrefix("hosts/") }
        defer { known = hosts }
        guard let known else { return }
        for (key, entry) in known where hosts[key] == nil {
            let host = try? JSONParser.parse(Array(entry.value))
            guard let node = host?["Node"]?.stringValue else { continue }
            let record = JSONValue.object([("Node", .string(node)), ("Address", host?["Address"] ?? .null),
                                           ("LastSeen", .string(RFC3339.format(now)))])
            do throws(EtcdError) {
                _ = try await client.put(PutRequest(key: keys.full(FleetKeys.seen(node)), value: Data(record.encoded().utf8)))
            } catch {
                logger.warning("cannot record when a host was last seen", metadata: ["node": "\(node)", "error": "\(error)"])
            }
        }
    }
}
