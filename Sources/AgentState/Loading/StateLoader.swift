// Reading the snapshot back from the store at start: every record kind, with what happens to
// one that is unusable (quarantined and logged; for the CA, a refusal to start).

import AgentConfig
import AgentStore
import Authorization
import CertificateAuthority
import ConnectdCore
import Foundation
import Logging

struct StateLoader {
    let store: any DurableStore
    let logger: Logger

    struct Loaded {
        var snapshot: StateSnapshot
        var storedProxies: [String: ProxyRecord]
    }

    /// - Parameter shared: fleet mode: intentions and the CA come from the fleet, not this store.
    func load(caSettings: CASettings, now: Date, shared: Bool = false) throws(StateError) -> Loaded {
        var proxies: [String: ProxyRecord] = [:]
        var services: [String: LocalService] = [:]
        var checks: [String: CheckDefinition] = [:]
        var intentions = IntentionTable()
        var damagedIntention: StoredEntry?
        do throws(StoreError) {
            for entry in try store.list(prefix: "proxies/") {
                guard let record = ProxyRecord(json: entry.value) else {
                    store.quarantine(entry.key, reason: "not a proxy record (expected ProxyServiceID, TargetServiceID, ProxyToken, BindPort, Source)", logger: logger)
                    continue
                }
                proxies[record.proxyServiceID] = record
            }
            for entry in try store.list(prefix: "services/") {
                guard let definition = service(entry) else { continue }
                services[definition.id] = LocalService(definition: definition, source: .api)
            }
            for entry in try store.list(prefix: "checks/") {
                guard let definition = check(entry) else { continue }
                checks[definition.id] = definition
            }
            // An intention record is never set aside: a lost deny would silently allow traffic.
            var unusable: StoredEntry?
            if !shared { intentions = IntentionTable.load(try store.list(prefix: IntentionTable.keyPrefix), revision: store.revision) { entry in
                unusable = unusable ?? entry
            } }
            damagedIntention = unusable
        } catch {
            throw .persistence(error)
        }
        if let damagedIntention {
            throw .damagedRecord(key: damagedIntention.key, reason: "not an intention record (expected ID, SourceName, DestinationName, Action)")
        }
        let ca = shared ? CAPolicy.fleetPending(settings: caSettings, reason: Self.waitingForFleet)
            : try authority(caSettings: caSettings, now: now)
        var snapshot = StateSnapshot(index: store.revision + 1, services: services, proxies: [:], intentions: intentions, ca: ca)
        snapshot.checks = checks
        if shared { snapshot.fleetCatalog = FleetCatalog() }
        for service in services.values {
            guard let request = service.definition.managedProxy else { continue }
            let id = service.definition.proxyServiceID
            if let record = proxies[id] {
                snapshot.proxies[id] = ManagedProxy(target: service.definition, request: request, token: record.token,
                                                    bindPort: record.bindPort,
                                                    bindPortIsExplicit: AgentState.explicitBindPort(request) != nil, source: .api)
            }
        }
        return Loaded(snapshot: snapshot, storedProxies: proxies)
    }

    static let waitingForFleet = "this host has not yet seen the fleet's roots and its intermediate certificate in etcd"

    /// A stored API registration, or nil (and quarantined) when it is not one.
    private func service(_ entry: StoredEntry) -> ServiceDefinition? {
        definition(entry, expected: "not a service record (expected a Definition object with a Name)") { reader in
            ServiceDefinitionDecoder.decode(reader, origin: .api)
        }
    }

    private func check(_ entry: StoredEntry) -> CheckDefinition? {
        definition(entry, expected: "not a check record (expected a Definition object with a Name and one probe)") { reader in
            CheckDefinitionDecoder.decode(reader, service: nil)
        }
    }

    /// A record's `Definition` (a registration body) read by `decode`; quarantined with the
    /// problems (or `expected`) when it does not read cleanly.
    private func definition<Value>(_ entry: StoredEntry, expected: String, decode: (ObjectReader) -> Value?) -> Value? {
        let sink = ProblemSink(file: entry.key)
        guard let body = entry.value["Definition"],
              let reader = ObjectReader.object(body, path: "Definition", sink: sink, matching: .lenient),
              let value = decode(reader), sink.problems.isEmpty
        else {
            let problems = sink.problems.map { "\($0.keyPath): \($0.message)" }
            store.quarantine(entry.key, reason: problems.isEmpty ? expected : problems.joined(separator: "; "), logger: logger)
            return nil
        }
        return value
    }

    /// The stored CA, or a new one committed now when this data_dir never had one. Stored CA
    /// records are never quarantined or replaced: damage stops the agent (see `CAPolicy.load`).
    private func authority(caSettings: CASettings, now: Date) throws(StateError) -> CAState {
        let entries: [String: StoredEntry]
        do throws(StoreError) {
            entries = Dictionary(uniqueKeysWithValues: (try store.list(prefix: "ca/") + store.list(prefix: CAPolicy.markerKey))
                .map { ($0.key, $0) })
        } catch {
            throw .persistence(error)
        }
        let loaded: CAState?
        do throws(CAError) {
            loaded = try CAPolicy.load(roots: entries[CAPolicy.rootsKey], config: entries[CAPolicy.configKey],
                                       marker: entries[CAPolicy.markerKey])
        } catch {
            throw .ca(error)
        }
        if let loaded {
            // A data_dir from before the marker existed gets it now; the old serial counter goes
            // (serials are random).
            var operations: [StoreOperation] = []
            if entries[CAPolicy.markerKey] == nil { operations += loaded.markerOperations }
            if entries["ca/serial"] != nil { operations.append(.delete(key: "ca/serial")) }
            if !operations.isEmpty {
                do throws(StoreError) { _ = try store.commit(operations) } catch { throw .persistence(error) }
            }
            return loaded
        }
        let created: CAState
        do throws(CAError) {
            created = try CAPolicy.create(settings: caSettings, now: now)
        } catch {
            throw .ca(error)
        }
        let revision: UInt64
        do throws(StoreError) {
            revision = try store.commit(created.operations(from: nil))
        } catch {
            throw .persistence(error)
        }
        logger.info("created the certificate authority", metadata: [
            "trust_domain": "\(created.trustDomain)", "root": "\(created.roots.first?.id ?? "")"])
        return created.stamped(revision: revision, previous: nil)
    }
}
