import AgentConfig
import AgentState
import AgentStore
import CertificateAuthority
import ConnectdCore
import Foundation
@_exported import TestSupport
import Logging

func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("connectd-ca-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

let quietLogger: Logger = {
    var logger = Logger(label: "ca-test")
    logger.logLevel = .critical
    return logger
}()

/// The CA as the agent runs it: its state inside AgentState, policy from CertificateAuthority.
struct TestCA {
    let state: AgentState

    var roots: RootsView { state.snapshot.ca.rootsView }
    var configuration: CAConfiguration { state.snapshot.ca.config }
    var trustDomain: String { state.snapshot.ca.trustDomain }
    var activeSigningKeyID: String { state.snapshot.ca.activeSigningKeyID }
    var rootsWatch: IndexWatch { state.rootsWatch }

    func issueLeaf(service: String, datacenter: String, now: Date = Date()) throws(CAError) -> IssuedCert {
        try CAPolicy.issueLeaf(state.snapshot.ca, service: service, datacenter: datacenter, index: 1, now: now)
    }

    @discardableResult
    func applyConfiguration(_ settings: CASettings, now: Date = Date()) async throws(StateError) -> Bool {
        try await state.applyCAConfiguration(settings, now: now)
    }

    func prune(now: Date) async throws(StateError) {
        try await state.pruneCA(now: now)
    }
}

/// Opens the state under `dataDir` (creating the CA on first open) and applies `settings` as
/// the config files' `connect.ca_config`, as the agent's start does.
func openCA(_ dataDir: String, settings: CASettings = CASettings(), now: Date = Date()) async throws -> TestCA {
    try await openCA(store: try FileStore(dataDir: dataDir), settings: settings, now: now)
}

func openCA(store: any DurableStore, settings: CASettings = CASettings(), now: Date = Date()) async throws -> TestCA {
    let allocator = PortAllocator(range: nil, probe: BindPortProbe(address: "127.0.0.1"))
    let state = try AgentState(store: store, allocator: allocator, caSettings: settings, logger: quietLogger, now: now)
    try await state.applyConfiguration(.init(services: [], intentions: [], caSettings: settings, allocator: allocator), now: now)
    return TestCA(state: state)
}

/// Runs `openssl` with `arguments` in `directory`; stdout and stderr together.
func openssl(_ arguments: [String], in directory: String) throws -> CommandResult {
    try runProcess("/usr/bin/openssl", arguments, in: directory)
}

func write(_ text: String, _ name: String, in directory: String) throws {
    try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
}

/// The PEM blocks of `text`, each with its END line and a trailing newline.
func pemBlocks(_ text: String) -> [String] {
    text.components(separatedBy: "-----END CERTIFICATE-----").dropLast().map {
        $0.trimmingCharacters(in: .whitespacesAndNewlines) + "\n-----END CERTIFICATE-----\n"
    }
}

/// A store that fails every write, like a full disk, over a real one for reads.
final class FullDiskStore: DurableStore {
    let inner: FileStore
    init(_ inner: FileStore) { self.inner = inner }
    var revision: UInt64 { inner.revision }
    func list(prefix: String) throws(StoreError) -> [StoredEntry] { try inner.list(prefix: prefix) }
    func commit(_ operations: [StoreOperation], expect: [String: UInt64?]) throws(StoreError) -> UInt64 {
        throw StoreError(key: operations.first.map { "\($0)" } ?? "?", message: "cannot write: No space left on device")
    }
    func quarantine(key: String, reason: String) -> QuarantinedEntry { inner.quarantine(key: key, reason: reason) }
}
