// Proves a PID is the process we started: PID + start time (/proc/<pid>/stat) + boot id.

#if canImport(Glibc)
import Glibc
#endif

public struct ProcessIdentity: Sendable, Hashable {
    public var pid: Int32
    /// Field 22 of /proc/<pid>/stat: clock ticks after boot.
    public var startTime: UInt64
    public var bootID: String

    public init(pid: Int32, startTime: UInt64, bootID: String) {
        self.pid = pid
        self.startTime = startTime
        self.bootID = bootID
    }

    /// The identity of the live process `pid`, or nil when it does not exist.
    public static func current(pid: Int32) -> ProcessIdentity? {
        guard let startTime = startTime(of: pid), let bootID = bootID() else { return nil }
        return ProcessIdentity(pid: pid, startTime: startTime, bootID: bootID)
    }

    /// True when `pid` is still the same process (same start time, same boot).
    public var isAlive: Bool { Self.current(pid: pid) == self }

    static func startTime(of pid: Int32) -> UInt64? {
        guard let text = readSmallFile("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        // Fields after "comm)" start at field 3 (state); start time is field 22.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    static func bootID() -> String? {
        readSmallFile("/proc/sys/kernel/random/boot_id").map { String($0.filter { !$0.isWhitespace }) }
    }
}

func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = read(fd, &buffer, buffer.count)
    guard count > 0 else { return nil }
    return String(decoding: buffer[0..<count], as: UTF8.self)
}
