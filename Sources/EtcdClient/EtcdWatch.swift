// One long watch on a key prefix: what the stream brings, in revision order, as batches of
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

extension EtcdClient {
    /// Watches every key under `prefix` from `revision` on one endpoint after another, until
    /// one accepts. The stream finishes with a `WatchEnd` error; cancelling the consuming task
    /// closes the connection. A line longer than `maxLineBytes` ends the watch.
    public func watch(prefix: Data, from revision: Int64, idleTimeout: Duration = .seconds(30),
                      maxLineBytes: Int = 16 << 20) -> AsyncThrowingStream<WatchUpdate, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await self.openWatch(prefix: prefix, from: revision, idleTimeout: idleTimeout,
                                            maxLineBytes: maxLineBytes) { continuation.yield($0) }
                    continuation.finish(throwing: WatchEnd.interrupted("the stream ended"))
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    private func openWatch(prefix: Data, from revision: Int64, idleTimeout: Duration, maxLineBytes: Int,
                          yield: (WatchUpdate) -> Void) async throws {
        // Its own HTTP client: the read timeout (no bytes for that long, not even a progress
        // notification) is what notices a stream that died silently.
        let watchHTTP = Self.makeHTTP(connectTimeout: settings.attemptTimeout, readTimeout: idleTimeout)
        do {
            try await runWatch(prefix: prefix, from: revision, maxLineBytes: maxLineBytes, http: watchHTTP, yield: yield)
        } catch {
            try? await watchHTTP.shutdown()
            throw error
        }
    }

    private func runWatch(prefix: Data, from revision: Int64, maxLineBytes: Int, http watchHTTP: HTTPClient,
                          yield: (WatchUpdate) -> Void) async throws {
        let body = try Self.encoded(WatchRequest(createRequest: .prefix(prefix, from: revision)), for: "/v3/watch")
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
            do {
                for try await chunk in response.body {
                    for line in try lines.append(chunk) {
                        if let update = try Self.update(from: line, joining: &pending) { yield(update) }
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
        if result.canceled == true {
            if let compacted = result.compactRevision, compacted.value > 0 { throw WatchEnd.compacted(revision: compacted.value) }
            throw WatchEnd.interrupted(result.cancelReason ?? "etcd canceled the watch")
        }
        if result.created == true { return .created(revision: revision) }
        if let events = result.events, !events.isEmpty {
            return .events(events, revision: events.compactMap { $0.kv?.modRevision?.value }.max() ?? revision)
        }
        return .progress(revision: revision)
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
