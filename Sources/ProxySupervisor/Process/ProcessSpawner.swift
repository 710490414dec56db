// Starts a proxy process with swift-subprocess: its own session and process group, stdin from
// /dev/null, a complete environment, stdout/stderr on the proxy's log pipes; signal mask reset
// and stray descriptors closed by swift-subprocess.

import AgentState
import CProcShims
import Foundation
import Subprocess
import SystemPackage

/// A process the supervisor watches: spawned by us, or adopted from a previous connectd.
public struct WatchedProcess: Sendable {
    public let identity: ProcessIdentity
    /// A pidfd for signalling without PID-reuse races; -1 when the kernel has none.
    public let pidfd: Int32
    public let startedAt: Date
    /// Completes when the process has exited (and, for our own children, been reaped).
    public let exit: Task<ExitStatus, Never>
    public let adopted: Bool

    public var pid: Int32 { identity.pid }

    /// Sends `signal` to the process group (the proxy and its children), only if the leader
    /// is still the process we know.
    public func signalGroup(_ signal: Int32) {
        if pidfd >= 0 {
            guard connectd_pidfd_send_signal(pidfd, 0) == 0 else { return }
        } else if !identity.isAlive {
            return
        }
        if kill(-identity.pid, signal) != 0 && pidfd >= 0 {
            _ = connectd_pidfd_send_signal(pidfd, signal)
        }
    }
}

extension WatchedProcess {
    /// Sends `signal` to the group, SIGKILL to the group after `grace`; returns once it exited.
    @discardableResult
    public func terminate(signal: Int32, grace: Duration) async -> ExitStatus {
        signalGroup(signal)
        let killer = Task {
            try? await Task.sleep(for: grace)
            guard !Task.isCancelled else { return }
            signalGroup(SIGKILL)
        }
        let status = await exit.value
        killer.cancel()
        return status
    }
}

public struct SpawnError: Error, CustomStringConvertible {
    public var description: String
}

public enum ProcessSpawner {
    /// Spawns `spec`; returns once the process exists. Its exit is awaited through `exit`.
    /// - Parameter marker: variables added to the spec's environment (the spawn marker); not
    ///   part of the spec, so they never change its process hash.
    public static func spawn(_ spec: ProxySpec, logs: ProxyLogs, marker: [String: String] = [:]) async throws -> WatchedProcess {
        let executable: String
        do {
            executable = try ExecutableResolver.resolve(spec.command, proxyID: spec.proxyID, path: spec.environment["PATH"] ?? "")
        } catch {
            throw SpawnError(description: error.description)
        }
        let (stdout, stderr) = try logs.childDescriptors()
        var options = PlatformOptions()
        options.createSession = true
        let environment = Environment.custom(spec.environment.merging(marker) { $1 }.sorted { $0.key < $1.key }.map { Array("\($0.key)=\($0.value)\0".utf8) })
        let (pids, continuation) = AsyncStream.makeStream(of: Int32.self)
        let outcome = Task<Result<ExitStatus, any Error>, Never> {
            do {
                let result = try await Subprocess.run(
                    .path(FilePath(executable)), arguments: Arguments(Array(spec.command.dropFirst())),
                    environment: environment, platformOptions: options, input: .none,
                    output: .fileDescriptor(FileDescriptor(rawValue: stdout), closeAfterSpawningProcess: true),
                    error: .fileDescriptor(FileDescriptor(rawValue: stderr), closeAfterSpawningProcess: true)
                ) { execution in
                    continuation.yield(execution.processIdentifier.value)
                    continuation.finish()
                }
                switch result.terminationStatus {
                case .exited(let code): return .success(.exited(code))
                case .signaled(let signal): return .success(.signaled(signal))
                }
            } catch {
                continuation.finish()
                return .failure(error)
            }
        }
        var iterator = pids.makeAsyncIterator()
        guard let pid = await iterator.next() else {
            if case .failure(let error) = await outcome.value {
                throw SpawnError(description: "proxy \(spec.proxyID): cannot start \(executable): \(error)")
            }
            throw SpawnError(description: "proxy \(spec.proxyID): cannot start \(executable)")
        }
        let identity = ProcessIdentity.current(pid: pid) ?? ProcessIdentity(pid: pid, startTime: 0, bootID: "")
        let pidfd = connectd_pidfd_open(pid)
        let exit = Task<ExitStatus, Never> {
            switch await outcome.value {
            case .success(let status): return status
            case .failure: return .unknown
            }
        }
        return WatchedProcess(identity: identity, pidfd: pidfd, startedAt: Date(), exit: exit, adopted: false)
    }

    /// Watches a process that is not our child (left by a previous connectd) through its pidfd.
    public static func adopt(_ identity: ProcessIdentity, startedAt: Date, events: EventThread) -> WatchedProcess? {
        let pidfd = connectd_pidfd_open(identity.pid)
        guard pidfd >= 0, identity.isAlive else {
            if pidfd >= 0 { close(pidfd) }
            return nil
        }
        let exit = Task<ExitStatus, Never> {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let once = OnceFlag()
                events.add(pidfd) { _ in
                    guard once.claim() else { return }
                    events.remove(pidfd)
                    continuation.resume()
                }
            }
            return .unknown
        }
        return WatchedProcess(identity: identity, pidfd: pidfd, startedAt: startedAt, exit: exit, adopted: true)
    }
}

/// True the first time only.
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false
    func claim() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if claimed { return false }
        claimed = true
        return true
    }
}
