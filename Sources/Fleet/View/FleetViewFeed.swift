// Keeps the view of this agent's scopes current: each scope listed (paged, all at one
// revision), then all watched on one stream from the next revision. A scope asked for later is
// listed on its own and the stream re-opened with it (the others resume where they are); a
// scope no longer wanted is dropped the same way. Whenever the stream ends (a member died,
// compaction, no leader, a silent stream) everything is listed again before watching, never
// resuming at a revision etcd may have compacted (etcd#18089 loses deletes there in 3.4.23).
// Each change is handed on and saved.

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

    /// What reaches the feed's loop: updates of the current stream (older streams' are dropped
    /// by generation), its end, and a change of the wanted scopes.
    private enum Input: Sendable {
        case message(generation: Int, WatchMessage)
        case ended(generation: Int, any Error)
        case scopesChanged
    }

    public private(set) var phase = Phase.starting
    public private(set) var view: FleetView
    /// Watch events received since start (what a change elsewhere in the fleet costs this agent).
    public private(set) var eventsReceived = 0
    private let client: EtcdClient
    private let keys: FleetKeys
    private let base: Set<String>
    private let interest: FleetInterest
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
    private let inputs: AsyncStream<Input>
    private let input: AsyncStream<Input>.Continuation
    /// The scopes of the open stream, by the position of their watch.
    private var watching: [String] = []
    private var generation = 0
    private var forwarders: [Task<Void, Never>] = []

    /// - Parameter base: the scopes kept whatever is used (`FleetScope.base`); the catalog
    ///   scopes of `interest`'s services are added to them.
    public init(client: EtcdClient, keys: FleetKeys, base: Set<String>, interest: FleetInterest, file: FleetViewFile?,
                initial: FleetView, logger: Logger, onChange: @escaping @Sendable (FleetView, Set<String>) async -> Void) {
        self.client = client
        self.keys = keys
        self.base = base
        self.interest = interest
        self.saver = file.map { FleetViewSaver(file: $0, logger: logger) }
        self.view = initial
        self.logger = logger
        self.onChange = onChange
        (inputs, input) = AsyncStream.makeStream(of: Input.self)
    }

    public func setOnReconnect(_ action: @escaping @Sendable () async -> Void) { onReconnect = action }

    /// The scopes wanted now.
    public nonisolated func wantedScopes() -> Set<String> {
        FleetScope.minimal(base.union(interest.services().map(FleetScope.catalog)))
    }

    /// Re-reads the wanted scopes soon (a service is used or no longer used).
    public nonisolated func scopesChanged() { input.yield(.scopesChanged) }

    /// Waits until `service`'s catalog is listed and watched, at most `timeout`; false if not.
    public func ensure(service: String, timeout: Duration) async -> Bool {
        let scope = FleetScope.catalog(service)
        let deadline = ContinuousClock.now + timeout
        if !watching.contains(scope) { scopesChanged() }
        while !(watching.contains(scope) && view.scopes[scope] != nil) {
            guard ContinuousClock.now < deadline, !Task.isCancelled else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

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
                stopStream()
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
        stopStream()
        input.finish()
        // The last changes reach the file before the agent exits.
        if saveScheduled, let saver {
            saveScheduled = false
            await saver.save(view)
        }
        phase = .stopped
    }

    /// Lists every wanted scope at one revision (paged) and adopts it, dropping the rest.
    func relist() async throws {
        let wanted = wantedScopes()
        let (listed, revision) = try await list(wanted, at: nil)
        var next = view
        var touched = next.replace(with: listed, scopes: wanted, at: revision ?? view.revision)
        touched.formUnion(next.retain(wanted))
        await adopt(next, touched)
        watching = []
        interest.setListed([])
    }

    /// The entries of `scopes` at one revision (`revision`, or the first answer's).
    private func list(_ scopes: Set<String>, at revision: Int64?) async throws -> (entries: [String: ViewEntry], revision: Int64?) {
        var listed: [String: ViewEntry] = [:]
        var revision = revision
        for scope in scopes.sorted() {
            var (start, end) = FleetScope.range(scope, keys)
            while true {
                let page = try await client.range(RangeRequest(key: start, rangeEnd: end, limit: end == nil ? nil : pageSize, revision: revision))
                revision = revision ?? page.header?.currentRevision
                for kv in page.values {
                    guard let key = keys.relative(kv.key) else { continue }
                    listed[key] = ViewEntry(value: kv.value ?? Data(), createRevision: kv.createRevision?.value ?? 0,
                                            modRevision: kv.modRevision?.value ?? 0, lease: kv.lease?.value ?? 0)
                }
                guard page.more == true, let last = page.values.last?.key else { break }
                start = last + Data([0])
            }
        }
        return (listed, revision)
    }

    /// Opens the stream of the wanted scopes and follows it until it ends (always by throwing)
    /// or the agent stops.
    private func follow() async throws {
        openStream(wantedScopes())
        for await next in inputs {
            switch next {
            case .message(let streamGeneration, let message) where streamGeneration == generation:
                await handle(message)
            case .ended(let streamGeneration, let error) where streamGeneration == generation:
                throw error
            case .scopesChanged:
                try await rescope()
            default:
                continue
            }
            if Task.isShuttingDownGracefully { return }
        }
    }

    private func handle(_ message: WatchMessage) async {
        guard message.watch < watching.count else { return }
        let scope = watching[message.watch]
        switch message.update {
        case .created:
            break
        case .progress(let revision):
            view.progress(scope, to: revision)
        case .events(let events, let revision):
            eventsReceived += events.count
            // In place: a copy of the view per event would cost a pass over it.
            let touched = view.apply(events, scope: scope, keys: keys, upTo: revision)
            await adopt(view, touched)
        }
    }

    /// Lists the scopes newly wanted, drops those no longer wanted, and re-opens the stream.
    private func rescope() async throws {
        let wanted = wantedScopes()
        guard wanted != Set(watching) else { return }
        let added = wanted.subtracting(watching)
        var touched: Set<String> = []
        if !added.isEmpty {
            let (listed, revision) = try await list(added, at: nil)
            touched = view.replace(with: listed, scopes: added, at: revision ?? view.revision)
        }
        touched.formUnion(view.retain(wanted))
        openStream(wanted)
        await adopt(view, touched)
    }

    /// One watch stream per scope, each from the revision after the one its copy is complete
    /// to. (etcd takes several create requests on one stream, but through the HTTP/1.1 gateway a
    /// create sent after the response started is lost: Go's server stops reading the body.)
    private func openStream(_ scopes: Set<String>) {
        stopStream()
        generation += 1
        let streamGeneration = generation
        watching = scopes.sorted()
        interest.setListed(Set(watching.compactMap(FleetScope.service(of:))))
        let input = input
        for (position, scope) in watching.enumerated() {
            let stream = client.watch([FleetScope.watch(scope, keys, from: (view.scopes[scope] ?? view.revision) + 1)], idleTimeout: .seconds(10))
            forwarders.append(Task {
                do {
                    for try await message in stream {
                        input.yield(.message(generation: streamGeneration, WatchMessage(watch: position, update: message.update)))
                    }
                    input.yield(.ended(generation: streamGeneration, WatchEnd.interrupted("the stream of \(scope) ended")))
                } catch {
                    input.yield(.ended(generation: streamGeneration, error))
                }
            })
        }
    }

    private func stopStream() {
        for forwarder in forwarders { forwarder.cancel() }
        forwarders = []
        generation += 1
        watching = []
        interest.setListed([])
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
