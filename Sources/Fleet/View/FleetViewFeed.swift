// Keeps the view of this agent's scopes current: the scopes listed (paged, all at one revision),
// then each watched on its own stream from the next revision. A scope asked for later is listed
// on its own and gets its stream from its listing's revision; a scope no longer wanted loses its
// stream and its keys; the other streams are left alone. A stream only ever starts right after a
// listing, never resumed from a progress notification's revision (etcd 3.4.23 can send one ahead
// of an event still to come, etcd#15220) or from a revision etcd may have compacted (etcd#18089
// loses deletes there). Whenever a stream ends (a member died, compaction, no leader, silence)
// everything is listed again. Each change is handed on and saved.

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

    /// What reaches the feed's loop: updates of a scope's stream (those of a stream closed since
    /// are dropped by its number), its end, and a change of the wanted scopes.
    private enum Input: Sendable {
        case message(scope: String, stream: Int, WatchUpdate)
        case ended(scope: String, stream: Int, any Error)
        case scopesChanged
    }

    private struct Stream {
        let number: Int
        let forwarder: Task<Void, Never>
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
    /// How long a stream may stay silent before it is taken as dead. etcd sends a watch a
    /// progress notification on a tick only if no event went to it since the previous tick, so
    /// after an event the silence lasts up to two intervals: 12 s suits the 5 s interval the
    /// README asks for, with a margin.
    static let silence = Duration.seconds(12)
    /// Page size of a listing.
    private let pageSize: Int64 = 500
    /// Saves are at most one a second (the file is a fail-static copy; a start lists anyway).
    private var lastSave = ContinuousClock.now - .seconds(10)
    private var saveScheduled = false
    private let inputs: AsyncStream<Input>
    private let input: AsyncStream<Input>.Continuation
    /// The open stream of each scope watched.
    private var streams: [String: Stream] = [:]
    private var streamsOpened = 0
    /// Scopes listed, watched and handed on (a query of their services can answer from the state).
    private var ready: Set<String> = []

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
        if !ready.contains(scope) { scopesChanged() }
        while !ready.contains(scope) {
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
                stopStreams()
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
        stopStreams()
        input.finish()
        // The last changes reach the file before the agent exits.
        if saveScheduled, let saver {
            saveScheduled = false
            await saver.save(view)
        }
        phase = .stopped
    }

    /// Lists every wanted scope at one revision (paged), adopts it, dropping the rest, and
    /// opens their streams.
    func relist() async throws {
        stopStreams()
        let wanted = wantedScopes()
        let (listed, revision) = try await list(wanted, at: nil)
        let listRevision = revision ?? view.revision
        var next = view
        var touched = next.replace(with: listed, scopes: wanted, at: listRevision)
        touched.formUnion(next.retain(wanted))
        await adopt(next, touched)
        open(wanted, from: listRevision + 1)
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

    /// Follows the open streams until one ends (always by throwing) or the agent stops.
    private func follow() async throws {
        for await next in inputs {
            switch next {
            case .message(let scope, let number, let update) where streams[scope]?.number == number:
                await handle(update, of: scope)
            case .ended(let scope, let number, let error) where streams[scope]?.number == number:
                throw error
            case .scopesChanged:
                try await rescope()
            default:
                continue
            }
            if Task.isShuttingDownGracefully { return }
        }
    }

    private func handle(_ update: WatchUpdate, of scope: String) async {
        switch update {
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

    /// Lists and watches the scopes newly wanted; drops the streams and keys of those no longer
    /// wanted. The other streams go on.
    private func rescope() async throws {
        let wanted = wantedScopes()
        let open = Set(streams.keys)
        guard wanted != open else { return }
        for scope in open.subtracting(wanted) { close(scope) }
        let added = wanted.subtracting(open)
        var touched: Set<String> = []
        var listRevision: Int64?
        if !added.isEmpty {
            let (listed, revision) = try await list(added, at: nil)
            listRevision = revision ?? view.revision
            touched = view.replace(with: listed, scopes: added, at: listRevision!)
        }
        touched.formUnion(view.retain(wanted))
        await adopt(view, touched)
        if let listRevision { self.open(added, from: listRevision + 1) }
    }

    /// One watch stream per scope (etcd takes several create requests on one stream, but through
    /// the HTTP/1.1 gateway one sent after the response started is lost: Go's server stops
    /// reading the body), each from `revision`, the one after the listing of the scope.
    private func open(_ scopes: Set<String>, from revision: Int64) {
        let input = input
        for scope in scopes.sorted() {
            close(scope)
            streamsOpened += 1
            let number = streamsOpened
            let stream = client.watch([FleetScope.watch(scope, keys, from: revision)], idleTimeout: Self.silence)
            let forwarder = Task {
                do {
                    for try await message in stream {
                        input.yield(.message(scope: scope, stream: number, message.update))
                    }
                    input.yield(.ended(scope: scope, stream: number, WatchEnd.interrupted("the stream of \(scope) ended")))
                } catch {
                    input.yield(.ended(scope: scope, stream: number, error))
                }
            }
            streams[scope] = Stream(number: number, forwarder: forwarder)
            ready.insert(scope)
        }
        interest.setListed(Set(ready.compactMap(FleetScope.service(of:))))
    }

    private func close(_ scope: String) {
        streams.removeValue(forKey: scope)?.forwarder.cancel()
        ready.remove(scope)
        interest.setListed(Set(ready.compactMap(FleetScope.service(of:))))
    }

    private func stopStreams() {
        for stream in streams.values { stream.forwarder.cancel() }
        streams = [:]
        ready = []
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
