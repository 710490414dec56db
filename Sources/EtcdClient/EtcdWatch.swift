// Long watches on key ranges, several on one stream: what the stream brings, in revision order, as batches of
// events, progress notifications (a heartbeat that also advances the resume point) and the end
// of the stream with its reason. The caller owns resuming: after `.compacted` it must re-list,
// because a watch resumed at a compacted revision may lose events (etcd#18089 in 3.4.23).

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

public enum WatchUpdate: Sendable, Equatable {
    /// The watch is open; `revision` is the store's revision when it was created.
    case created(revision: Int64)
    /// Changes, all at or below `revision`, in order.
    case events([WatchEvent], revision: Int64)
    /// Nothing changed under the prefix up to `revision`.
    case progress(revision: Int64)
}

public enum WatchEnd: Error, Sendable, Equatable, CustomStringConvertible {
    /// The start revision was compacted away (etcd then keeps the stream open and silent).
    case compacted(revision: Int64)
    /// The member said so (e.g. it has no leader) or the connection ended or went quiet.
    case interrupted(String)

    public var description: String {
        switch self {
        case .compacted(let revision): "the watch start was compacted (compact revision \(revision)): re-list"
        case .interrupted(let reason): "the watch ended: \(reason)"
        }
    }
}

/// One update of a multiplexed watch: `watch` is the position of its create request.
public struct WatchMessage: Sendable, Equatable {
    public var watch: Int
    public var update: WatchUpdate

    public init(watch: Int, update: WatchUpdate) {
        self.watch = watch
        self.update = update
    }
}

extension EtcdClient {
    /// Watches every key under `prefix` from `revision` (one watch of ``watch(_:idleTimeout:maxLineBytes:)``).
    public func watch(prefix: Data, from revision: Int64, idleTimeout: Duration = .seconds(30),
                      maxLineBytes: Int = 16 << 20) -> AsyncThrowingStream<WatchUpdate, any Error> {
        let messages = watch([.prefix(prefix, from: revision)], idleTimeout: idleTimeout, maxLineBytes: maxLineBytes)
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await message in messages { continuation.yield(message.update) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Several watches on one stream (etcd multiplexes them on one exchange), on one endpoint
    /// after another until one accepts. Each message names its watch by the position of its
    /// create request. The stream finishes with a `WatchEnd` error; cancelling the consuming
    /// task closes the connection. A line longer than `maxLineBytes` ends the watch.
    public func watch(_ requests: [WatchCreateRequest], idleTimeout: Duration = .seconds(30),
                      maxLineBytes: Int = 16 << 20) -> AsyncThrowingStream<WatchMessage, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await self.openWatch(requests, idleTimeout: idleTimeout, maxLineBytes: maxLineBytes) { continuation.yield($0) }
                    continuation.finish(throwing: WatchEnd.interrupted("the stream ended"))
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    private func openWatch(_ requests: [WatchCreateRequest], idleTimeout: Duration, maxLineBytes: Int,
                          yield: (WatchMessage) -> Void) async throws {
        // Its own HTTP client: the read timeout (no bytes for that long, not even a progress
        // notification) is what notices a stream that died silently.
        let watchHTTP = Self.makeHTTP(connectTimeout: settings.attemptTimeout, readTimeout: idleTimeout)
        do {
            try await runWatch(requests, maxLineBytes: maxLineBytes, http: watchHTTP, yield: yield)
        } catch {
            try? await watchHTTP.shutdown()
            throw error
        }
    }

    private func runWatch(_ requests: [WatchCreateRequest], maxLineBytes: Int, http watchHTTP: HTTPClient,
                          yield: (WatchMessage) -> Void) async throws {
        guard !requests.isEmpty else { throw WatchEnd.interrupted("nothing to watch") }
        // The gateway reads the body as a stream of requests: one create request after another.
        var body = ByteBuffer()
        for request in requests {
            body.writeImmutableBuffer(try Self.encoded(WatchRequest(createRequest: request), for: "/v3/watch"))
            body.writeString("\n")
        }
        var attempts: [String] = []
        for (_, endpoint) in rotation() {
            var request = Self.post(endpoint, "/v3/watch", body, token: try await currentToken())
            // Without it a member that loses quorum keeps the stream open and silent.
            request.headers.add(name: "Grpc-Metadata-hasleader", value: "true")
            let response: HTTPClientResponse
            do {
                response = try await watchHTTP.execute(request, deadline: .now() + .milliseconds(settings.attemptTimeout.milliseconds))
            } catch {
                attempts.append("\(endpoint): \(error)")
                continue
            }
            guard response.status == .ok else {
                attempts.append("\(endpoint): HTTP \(response.status.code)")
                continue
            }
            var lines = LineSplitter(maxLineBytes: maxLineBytes)
            var pending: WatchResponse?
            // etcd numbers a stream's watches as it creates them, in the order they were asked for.
            var positions: [Int64: Int] = [:]
            do {
                for try await chunk in response.body {
                    for line in try lines.append(chunk) {
                        guard let (id, update) = try Self.message(from: line, joining: &pending) else { continue }
                        if case .created = update {
                            guard positions.count < requests.count else { throw WatchEnd.interrupted("etcd created more watches than asked") }
                            positions[id] = positions.count
                        }
                        guard let position = positions[id] else { throw WatchEnd.interrupted("an update for an unknown watch \(id)") }
                        yield(WatchMessage(watch: position, update: update))
                    }
                }
            } catch let end as WatchEnd {
                throw end
            } catch {
                throw WatchEnd.interrupted("\(endpoint): \(error)")
            }
            throw WatchEnd.interrupted("\(endpoint) closed the stream")
        }
        throw WatchEnd.interrupted("no endpoint accepted the watch: " + attempts.joined(separator: "; "))
    }

    /// Decodes one line; fragments are joined into `pending` until the last one arrives.
    static func update(from line: Data, joining pending: inout WatchResponse?) throws -> WatchUpdate? {
        try message(from: line, joining: &pending)?.update
    }

    /// Decodes one line with its watch ID; fragments (consecutive on the stream) are joined
    /// into `pending` until the last one arrives.
    static func message(from line: Data, joining pending: inout WatchResponse?) throws -> (watchID: Int64, update: WatchUpdate)? {
        let decoded: WatchLine
        do {
            decoded = try JSONDecoder().decode(WatchLine.self, from: line)
        } catch {
            throw WatchEnd.interrupted("an unreadable line: \(error)")
        }
        if let error = decoded.error {
            throw WatchEnd.interrupted(error.message ?? "code \(error.grpcCode ?? 0)")
        }
        guard var result = decoded.result else { return nil }
        if let earlier = pending {
            result.events = (earlier.events ?? []) + (result.events ?? [])
            pending = nil
        }
        if result.fragment == true {
            pending = result
            return nil
        }
        let revision = result.header?.currentRevision ?? 0
        let id = result.watchId?.value ?? 0
        if result.canceled == true {
            if let compacted = result.compactRevision, compacted.value > 0 { throw WatchEnd.compacted(revision: compacted.value) }
            throw WatchEnd.interrupted(result.cancelReason ?? "etcd canceled the watch")
        }
        if result.created == true { return (id, .created(revision: revision)) }
        // A progress notification asked for with a progress request (not sent here) names no watch.
        if id < 0 { return nil }
        if let events = result.events, !events.isEmpty {
            return (id, .events(events, revision: events.compactMap { $0.kv?.modRevision?.value }.max() ?? revision))
        }
        return (id, .progress(revision: revision))
    }
}

/// Splits a byte stream into `\n`-terminated lines without the newline.
struct LineSplitter {
    let maxLineBytes: Int
    private var partial = Data()

    init(maxLineBytes: Int) { self.maxLineBytes = maxLineBytes }

    mutating func append(_ chunk: ByteBuffer) throws -> [Data] {
        partial.append(contentsOf: chunk.readableBytesView)
        var lines: [Data] = []
        while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
            let line = partial[partial.startIndex..<newline]
            if !line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) { lines.append(Data(line)) }
            partial = Data(partial[partial.index(after: newline)...])
        }
        if partial.count > maxLineBytes { throw WatchEnd.interrupted("a line longer than \(maxLineBytes) bytes") }
        return lines
    }
}
