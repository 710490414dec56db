// The mark every spawned proxy carries in its environment, and the scan of /proc that finds
// marked processes: so a proxy whose record was never written (connectd killed mid-spawn) or
// was lost is still found, and stopped, by the next connectd on the same data_dir.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A live process whose environment carries this data_dir's spawn marker.
struct MarkedProcess: Sendable, Equatable {
    var pid: Int32
    var spawnID: String
    /// True for the process connectd spawned (it leads its own process group); false for a
    /// child the proxy started, which inherited the marker.
    var leadsGroup: Bool
}

enum SpawnMarker {
    /// The data_dir of the connectd that spawned the process (canonical path).
    static let dataDirVariable = "CONNECTD_DATA_DIR"
    /// Random per spawn; the running record holds the same value.
    static let spawnIDVariable = "CONNECTD_SPAWN_ID"

    static func environment(dataDir: String, spawnID: String) -> [String: String] {
        [dataDirVariable: dataDir, spawnIDVariable: spawnID]
    }

    static func newSpawnID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in String(format: "%016llx", generator.next() as UInt64) }.joined()
    }

    /// Every live process (zombies excluded) marked with `dataDir`, this process excluded.
    static func scan(dataDir: String) -> [MarkedProcess] {
        let own = getpid()
        var found: [MarkedProcess] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), pid != own, let environ = readEnviron(pid) else { continue }
            var markedDir: String?
            var spawnID: String?
            for entry in environ.split(separator: 0) {
                let text = String(decoding: entry, as: UTF8.self)
                if text.hasPrefix(dataDirVariable + "=") { markedDir = String(text.dropFirst(dataDirVariable.count + 1)) }
                if text.hasPrefix(spawnIDVariable + "=") { spawnID = String(text.dropFirst(spawnIDVariable.count + 1)) }
            }
            guard markedDir == dataDir, let spawnID, !spawnID.isEmpty else { continue }
            found.append(MarkedProcess(pid: pid, spawnID: spawnID, leadsGroup: getpgid(pid) == pid))
        }
        return found.sorted { $0.pid < $1.pid }
    }

    /// `/proc/<pid>/environ` (bounded); nil for a zombie or a process we may not read.
    private static func readEnviron(_ pid: Int32) -> [UInt8]? {
        let fd = open("/proc/\(pid)/environ", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while bytes.count < 1 << 20 {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return bytes.isEmpty ? nil : bytes
    }
}
