// The durable identity of a running proxy, written on every spawn, exit and stop, so the next
// connectd can prove a PID is still the process it started. No tokens are stored.

import AgentState
import AgentStore
import ConnectdCore
import Foundation

struct RunningRecord: Sendable, Equatable {
    var proxyID: String
    var identity: ProcessIdentity
    var processHash: String
    var startedAt: Date

    var json: JSONValue {
        .object([
            ("ProxyID", .string(proxyID)), ("Pid", .int(Int64(identity.pid))),
            ("StartTime", .int(Int64(identity.startTime))), ("BootID", .string(identity.bootID)),
            ("ProcessHash", .string(processHash)), ("StartedAt", .double(startedAt.timeIntervalSince1970)),
        ])
    }

    init(proxyID: String, identity: ProcessIdentity, processHash: String, startedAt: Date) {
        self.proxyID = proxyID
        self.identity = identity
        self.processHash = processHash
        self.startedAt = startedAt
    }

    init?(json: JSONValue) {
        guard let proxyID = json["ProxyID"]?.stringValue, case .int(let pid)? = json["Pid"],
              case .int(let start)? = json["StartTime"], let boot = json["BootID"]?.stringValue,
              let hash = json["ProcessHash"]?.stringValue, pid > 0, start >= 0 else { return nil }
        let started: Double
        switch json["StartedAt"] {
        case .double(let value)?: started = value
        case .int(let value)?: started = Double(value)
        default: started = Date().timeIntervalSince1970
        }
        self.init(proxyID: proxyID, identity: ProcessIdentity(pid: Int32(pid), startTime: UInt64(start), bootID: boot),
                  processHash: hash, startedAt: Date(timeIntervalSince1970: started))
    }
}

/// `data_dir/proxy/running/<id>.json` and `data_dir/proxy/pids/<id>.pid`.
struct RunningRecordStore: Sendable {
    let dataDir: String

    private func recordPath(_ id: String) -> String { "\(dataDir)/proxy/running/\(ProxyLogs.fileName(id)).json" }
    private func pidPath(_ id: String) -> String { "\(dataDir)/proxy/pids/\(ProxyLogs.fileName(id)).pid" }

    func save(_ record: RunningRecord) throws {
        try AtomicFile.write(Array(record.json.encoded(pretty: true).utf8), to: recordPath(record.proxyID))
        try AtomicFile.write(Array(String(record.identity.pid).utf8), to: pidPath(record.proxyID))
    }

    func remove(_ id: String) {
        try? AtomicFile.remove(recordPath(id))
        try? AtomicFile.remove(pidPath(id))
    }

    /// Every readable record; unreadable ones are removed (they prove nothing).
    func loadAll() -> [String: RunningRecord] {
        let directory = "\(dataDir)/proxy/running"
        var records: [String: RunningRecord] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            let path = "\(directory)/\(name)"
            guard name.hasSuffix(".json"), let bytes = try? AtomicFile.read(path), let value = try? JSONParser.parse(bytes),
                  let record = RunningRecord(json: value) else {
                try? AtomicFile.remove(path)
                continue
            }
            records[record.proxyID] = record
        }
        return records
    }
}
