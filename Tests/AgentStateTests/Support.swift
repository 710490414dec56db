import AgentConfig
import AgentState
import AgentStore
import ConnectdCore
import Foundation
import Logging

func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("connectd-state-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Every port free, except the ones listed.
struct FakeProbe: PortProbe {
    var busy: Set<Int> = []
    func isFree(port: Int) -> Bool { !busy.contains(port) }
}

/// A store whose writes fail, like a full disk, over a real one (with its CA) for reads.
final class FailingStore: DurableStore {
    let inner: FileStore
    /// A fresh data_dir whose CA was created by a first open.
    init() throws {
        inner = try FileStore(dataDir: temporaryDirectory())
        _ = try AgentState(store: inner, allocator: PortAllocator(range: nil, probe: FakeProbe()), logger: Logger(label: "test"))
    }
    var revision: UInt64 { inner.revision }
    func list(prefix: String) throws(StoreError) -> [StoredEntry] { try inner.list(prefix: prefix) }
    func commit(_ operations: [StoreOperation], expect: [String: UInt64?]) throws(StoreError) -> UInt64 {
        throw StoreError(key: "services/x", message: "cannot write: No space left on device")
    }
    func quarantine(key: String, reason: String) -> QuarantinedEntry { QuarantinedEntry(key: key, movedTo: "", reason: reason) }
}

func service(_ name: String, port: Int = 8080, proxy: ManagedProxyRequest? = ManagedProxyRequest(), id: String? = nil) -> ServiceDefinition {
    var definition = ServiceDefinition(id: id ?? name, name: name)
    definition.port = port
    if let proxy {
        var connect = ServiceConnect()
        connect.proxy = proxy
        definition.connect = connect
    }
    return definition
}

func proxyRequest(bindPort: Int) -> ManagedProxyRequest {
    var request = ManagedProxyRequest()
    request.config = .object([("bind_port", .int(Int64(bindPort)))])
    return request
}

func makeState(dataDir: String, range: ClosedRange<Int>? = 20000...20010, probe: FakeProbe = FakeProbe()) throws -> AgentState {
    try AgentState(store: try FileStore(dataDir: dataDir), allocator: PortAllocator(range: range, probe: probe),
               logger: Logger(label: "test"))
}
