// The view on disk (`<data_dir>/fleet/view.json`, 0600): what a host restarted while etcd is
// unreachable serves from (roots, its intermediate, intentions, the catalog).

import AgentStore
import Foundation
import Logging

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

/// Writes views to the file one at a time, never an older one over a newer one.
actor FleetViewSaver {
    private let file: FleetViewFile
    private let logger: Logger
    private var savedRevision: Int64 = -1
    private var lastError: String?

    init(file: FleetViewFile, logger: Logger) {
        self.file = file
        self.logger = logger
    }

    func save(_ view: FleetView) {
        guard view.revision >= savedRevision else { return }
        do {
            try file.save(view)
            savedRevision = view.revision
            lastError = nil
        } catch {
            let text = "\(error)"
            if lastError != text { logger.error("cannot save the fleet view (fail-static after a restart needs it)", metadata: ["error": "\(text)"]) }
            lastError = text
        }
    }
}
