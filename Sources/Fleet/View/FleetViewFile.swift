// The view on disk (`<data_dir>/fleet/view.json`, 0600): what a host restarted while etcd is
// unreachable serves from (roots, its intermediate, intentions, the catalog).

import AgentStore
import Foundation

public struct FleetViewFile: Sendable {
    public let path: String

    public init(directory: String) { path = directory + "/view.json" }

    /// The saved view, nil when there is none; an unreadable one is reported through `problem`.
    public func load(problem: (String) -> Void) -> FleetView? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            return try JSONDecoder().decode(FleetView.self, from: Data(try AtomicFile.read(path, limit: 256 << 20)))
        } catch {
            problem("\(path): \(error)")
            return nil
        }
    }

    public func save(_ view: FleetView) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try AtomicFile.write(Array(try encoder.encode(view)), to: path)
    }
}
