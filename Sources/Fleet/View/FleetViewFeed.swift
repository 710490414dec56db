// Keeps the view current: a paginated list of the whole prefix at one revision, then one watch
// from the next revision; whenever the watch ends (a member died, compaction, no leader, a
// silent stream) it lists again before watching, never resuming at a revision etcd may have
// compacted (etcd#18089 loses deletes there in 3.4.23). Each change is handed on and saved.

import AgentStore
import EtcdClient
import Foundation
import Logging
import ServiceLifecycle

public actor FleetViewFeed: Service {
    public enum Phase: Sendable, Equatable {
        /// Serving the view read from disk (or an empty one); etcd not reached yet.
        case starting
        case listing
        case watching(fromRevision: Int64)
        /// etcd could not be reached or the watch ended; the last view is served meanwhile.
        case disconnected(reason: String)
        case stopped
    }

    public private(set) var phase = Phase.starting
    public private(set) var view: FleetView
    private let client: EtcdClient
    private let keys: FleetKeys
    private let saver: FleetViewSaver?
    private let logger: Logger
    private let onChange: @Sendable (FleetView, Set<String>) async -> Void
    /// Called after a listing that follows a disconnection (etcd is reachable again).
    private var onReconnect: (@Sendable () async -> Void)?
    /// Page size of a listing.
    private let pageSize: Int64 = 500
    /// Saves are at most one a second (the file is a fail-static copy; a start lists anyway).
    private var lastSave = ContinuousClock.now - .seconds(10)
    private var saveScheduled = false

    public init(client: EtcdClient, keys: FleetKeys, file: FleetViewFile?, initial: FleetView, logger: Logger,
                onChange: @escaping @Sendable (FleetView, Set<String>) async -> Void) {
        self.client = client
        self.keys = keys
        self.saver = file.map { FleetViewSaver(file: $0, logger: logger) }
        self.view = initial
        self.logger = logger
        self.onChange = onChange
    }

    public func setOnReconnect(_ action: @escaping @Sendable () async -> Void) { onReconnect = action }

    public func run() async throws {
        var failures = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let wasDisconnected: Bool
                if case .disconnected = phase { wasDisconnected = true } else { wasDisconnected = false }
                phase = .listing
                try await relist()
                failures = 0
                if wasDisconnected, let onReconnect { await onReconnect() }
                phase = .watching(fromRevision: view.revision + 1)
                try await cancelWhenGracefulShutdown { try await self.follow() }
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                let reason = "\(error)"
                if failures == 0 { logger.warning("fleet view: etcd unavailable, serving the last view", metadata: ["reason": "\(reason)"]) }
                phase = .disconnected(reason: reason)
                failures += 1
                // 0.25 s, 0.5 s, 1 s, then every 2 s.
                let delay = Duration.milliseconds(min(2000, 250 << min(failures - 1, 3)))
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            }
        }
        // The last changes reach the file before the agent exits.
        if saveScheduled, let saver {
            saveScheduled = false
            await saver.save(view)
        }
        phase = .stopped
    }

    /// Lists the whole prefix at one revision (paged) and adopts it.
    func relist() async throws {
        var listed: [String: ViewEntry] = [:]
        var start = keys.rootBytes
        let end = KeyRange.end(ofPrefix: keys.rootBytes)
        var revision: Int64?
        while true {
            let page = try await client.range(RangeRequest(key: start, rangeEnd: end, limit: pageSize, revision: revision))
            revision = revision ?? page.header?.currentRevision
            for kv in page.values {
                guard let key = keys.relative(kv.key) else { continue }
                listed[key] = ViewEntry(value: kv.value ?? Data(), createRevision: kv.createRevision?.value ?? 0,
                                        modRevision: kv.modRevision?.value ?? 0, lease: kv.lease?.value ?? 0)
            }
            guard page.more == true, let last = page.values.last?.key else { break }
            start = last + Data([0])
        }
        var next = view
        let touched = next.replace(with: listed, at: revision ?? view.revision)
        await adopt(next, touched)
    }

    /// Follows the watch from the view's revision + 1 until it ends (always by throwing).
    private func follow() async throws {
        for try await update in client.watch(prefix: keys.rootBytes, from: view.revision + 1, idleTimeout: .seconds(10)) {
            switch update {
            case .created:
                continue
            case .progress(let revision):
                if revision > view.revision { view.revision = revision }
            case .events(let events, let revision):
                // In place: a copy of a fleet-sized view per event would cost a pass over it.
                let touched = view.apply(events, keys: keys, upTo: revision)
                await adopt(view, touched)
            }
            if Task.isShuttingDownGracefully { return }
        }
    }

    private func adopt(_ next: FleetView, _ touched: Set<String>) async {
        view = next
        guard !touched.isEmpty else { return }
        saveSoon()
        await onChange(next, touched)
    }

    private func saveSoon() {
        if ContinuousClock.now - lastSave >= .seconds(1) {
            save()
            return
        }
        guard !saveScheduled else { return }
        saveScheduled = true
        Task {
            try? await Task.sleep(for: .seconds(1))
            await self.saveScheduledNow()
        }
    }

    private func saveScheduledNow() {
        guard saveScheduled else { return }
        save()
    }

    /// Hands the view to the saver, which encodes and writes it off this actor (a large view
    /// takes a while to encode, and events keep coming meanwhile).
    private func save() {
        saveScheduled = false
        lastSave = .now
        guard let saver else { return }
        let snapshot = view
        Task { await saver.save(snapshot) }
    }
}
