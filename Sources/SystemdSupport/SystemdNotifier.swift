// SystemdSupport: connectd's side of the systemd service contract, through libsystemd:
// readiness, reload and stop notifications, status lines and the watchdog. Every call is a
// no-op when connectd does not run under systemd (no NOTIFY_SOCKET). Sending never blocks.

import CSystemd
import Glibc

public struct SystemdNotifier: Sendable {
    public init() {}

    /// True when systemd (or a test listener) set NOTIFY_SOCKET.
    public var isEnabled: Bool { getenv("NOTIFY_SOCKET") != nil }

    /// Queues `fields` (`KEY=value` lines) for the service manager and returns at once; a socket
    /// nobody drains never blocks the caller (see `NotifySender`). Returns false when not supervised.
    @discardableResult
    public func notify(_ fields: [String]) -> Bool {
        guard isEnabled else { return false }
        let kind: NotifySender.Kind = if fields.allSatisfy({ $0.hasPrefix("STATUS=") }) {
            .status
        } else if fields == ["WATCHDOG=1"] {
            .watchdog
        } else {
            .state
        }
        NotifySender.shared.send(fields.joined(separator: "\n"), kind: kind)
        return true
    }

    /// Waits up to `limit` for queued messages to leave (call before exiting); true when none is left.
    @discardableResult
    public func flush(within limit: Duration = .seconds(1)) -> Bool {
        guard isEnabled else { return true }
        return NotifySender.shared.flush(within: limit)
    }

    public func ready(status: String) { notify(["READY=1", "STATUS=\(Self.oneLine(status))"]) }

    /// `RELOADING=1` with the CLOCK_MONOTONIC time systemd 253+ expects.
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        notify(["RELOADING=1", "MONOTONIC_USEC=\(usec)", "STATUS=reloading configuration"])
    }

    public func stopping(status: String) { notify(["STOPPING=1", "STATUS=\(Self.oneLine(status))"]) }

    public func status(_ text: String) { notify(["STATUS=\(Self.oneLine(text))"]) }

    public func watchdogPing() { notify(["WATCHDOG=1"]) }

    /// Asks for more time to stop (a drain longer than TimeoutStopSec).
    public func extendTimeout(by duration: Duration) {
        let usec = duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
        notify(["EXTEND_TIMEOUT_USEC=\(usec)"])
    }

    /// A fatal start error: the errno (when known) and the reason.
    public func failed(_ reason: String, errno code: Int32? = nil) {
        var fields = ["STATUS=\(Self.oneLine(reason))"]
        if let code { fields.append("ERRNO=\(code)") }
        notify(fields)
    }

    /// The watchdog interval when WATCHDOG_USEC is set for this process (WATCHDOG_PID is ours).
    public func watchdogInterval() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec))
    }

    static func oneLine(_ text: String) -> String {
        String(text.map { $0 == "\n" ? " " : $0 })
    }
}

/// Sockets passed by systemd (socket activation).
public enum SystemdSockets {
    /// The descriptors passed in LISTEN_FDS with their names (LISTEN_FDNAMES); the variables are
    /// removed from the environment so nothing started later sees them.
    public static func take() -> [(fd: Int32, name: String)] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        guard count > 0 else { return [] }
        var result: [(Int32, String)] = []
        for index in 0..<Int(count) {
            let name = names?[index].map { String(cString: $0) } ?? "unknown"
            result.append((SD_LISTEN_FDS_START + Int32(index), name))
            free(names?[index])
        }
        free(names)
        return result
    }
}

/// journald stdout streams (what systemd gives a service's stdout), one per proxy output.
public enum JournalStream {
    /// A descriptor whose writes become journal entries with `SYSLOG_IDENTIFIER=identifier` at
    /// syslog `priority` (6 info, 4 warning); nil when journald is not reachable.
    public static func open(identifier: String, priority: Int32) -> Int32? {
        let fd = sd_journal_stream_fd(identifier, priority, 0)
        return fd >= 0 ? fd : nil
    }
}
