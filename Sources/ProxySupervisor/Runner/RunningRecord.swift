// The durable identity of a running proxy, written before every spawn (the intent), after it
// (with the PID), and removed at exit and stop, so the next connectd can prove a PID is still
// the process it started, and find one it never recorded. No tokens are stored.

import AgentState
import AgentStore
import ConnectdCore
import Foundation

struct RunningRecord: Sendable, Equatable {
    var proxyID: String
    var identity: ProcessIdentity
    var processHash: String
    var startedAt: Date
    /// The spawn marker the process carries (see ``SpawnMarker``); empty in records written
    /// before markers existed.
    var spawnID: String

    var json: JSONValue {
        .object([
            ("ProxyID", .string(proxyID)), ("SpawnID", .string(spawnID)), ("Pid", .int(Int64(identity.pid))),
            ("StartTime", .int(Int64(identity.startTime))), ("BootID", .string(identity.bootID)),
            ("ProcessHash", .string(processHash)), ("StartedAt", .double(startedAt.timeIntervalSince1970)),
        ])
    }

    init(proxyID: String, identity: ProcessIdentity, processHash: String, startedAt: Date, spawnID: String) {
        self.proxyID = proxyID
        self.identity = identity
        self.processHash = processHash
        self.startedAt = startedAt
        self.spawnID = spawnID
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
                  processHash: hash, startedAt: Date(timeIntervalSince1970: started),
                  spawnID: json["SpawnID"]?.stringValue ?? "")
    }
}

/// A spawn about to happen: written before the process exists, so a connectd killed between
/// the spawn and the full record still knows the marker to look for.
struct SpawnIntent: Sendable, Equatable {
    var proxyID: String
    var spawnID: String
    var processHash: String

    var json: JSONValue {
        .object([("ProxyID", .string(proxyID)), ("SpawnID", .string(spawnID)), ("ProcessHash", .string(processHash)),
                 ("Spawning", .bool(true))])
    }

    init(proxyID: String, spawnID: String, processHash: String) {
        self.proxyID = proxyID
        self.spawnID = spawnID
        self.processHash = processHash
    }

    init?(json: JSONValue) {
        guard json["Spawning"] == .bool(true), let proxyID = json["ProxyID"]?.stringValue,
              let spawnID = json["SpawnID"]?.stringValue, !spawnID.isEmpty, let hash = json["ProcessHash"]?.stringValue
        else { return nil }
        self.init(proxyID: proxyID, spawnID: spawnID, processHash: hash)
    }
}

/// What `proxy/running/<id>.json` holds.
enum StoredRun: Sendable, Equatable {
    case spawning(SpawnIntent)
    case running(RunningRecord)
}

/// `data_dir/proxy/running/<id>.json` and `data_dir/proxy/pids/<id>.pid`.
struct RunningRecordStore: Sendable {
    let dataDir: String
    /// The canonical data_dir, as spawned proxies carry it in ``SpawnMarker/dataDirVariable``.
    let markerDataDir: String

    init(dataDir: String) {
        self.dataDir = dataDir
        markerDataDir = URL(fileURLWithPath: dataDir).resolvingSymlinksInPath().standardizedFileURL.path
    }

    private func recordPath(_ id: String) -> String { "\(dataDir)/proxy/running/\(ProxyLogs.fileName(id)).json" }
    private func pidPath(_ id: String) -> String { "\(dataDir)/proxy/pids/\(ProxyLogs.fileName(id)).pid" }

    func save(_ intent: SpawnIntent) throws {
        try AtomicFile.write(Array(intent.json.encoded(pretty: true).utf8), to: recordPath(intent.proxyID))
    }

    func save(_ record: RunningRecord) throws {
        try AtomicFile.write(Array(record.json.encoded(pretty: true).utf8), to: recordPath(record.proxyID))
        try AtomicFile.write(Array(String(record.identity.pid).utf8), to: pidPath(record.proxyID))
    }

    func remove(_ id: String) {
        try? AtomicFile.remove(recordPath(id))
        try? AtomicFile.remove(pidPath(id))
    }

    /// Every readable record; unreadable ones are removed (they prove nothing: a process they
    /// described is still found by its spawn marker).
    func loadAll() -> [String: StoredRun] {
        let directory = "\(dataDir)/proxy/running"
        var records: [String: StoredRun] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            let path = "\(directory)/\(name)"
            guard name.hasSuffix(".json"), let bytes = try? AtomicFile.read(path), let value = try? JSONParser.parse(bytes) else {
                try? AtomicFile.remove(path)
                continue
            }
            if let record = RunningRecord(json: value) {
                records[record.proxyID] = .running(record)
            } else if let intent = SpawnIntent(json: value) {
                records[intent.proxyID] = .spawning(intent)
            } else {
                try? AtomicFile.remove(path)
            }
        }
        return records
    }
}
