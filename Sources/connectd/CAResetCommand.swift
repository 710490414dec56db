// `connectd ca reset -data-dir DIR`: the one deliberate way to replace a damaged CA, offline.

import AgentStore
import ArgumentParser
import Foundation

struct CAResetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Remove a stopped agent's certificate authority so its next start creates a new trust domain.",
        discussion: """
        For a data_dir whose CA is damaged (the agent refuses to start and says so). The agent must be
        stopped: the command takes the data_dir's lock. Damaged CA files are moved to <data-dir>/quarantine/,
        readable ones are copied there before they are removed; nothing is deleted without a copy. Every
        certificate issued so far stops being trusted by proxies that get the new roots.
        """)

    @Option(name: .consul("data-dir"), help: "The agent's data_dir.")
    var dataDir: String

    /// The records that make up the CA (`CAPolicy`'s keys): roots, configuration, the old serial
    /// counter, and the marker that says this data_dir has a CA.
    static let caPrefixes = ["ca/", "agent/ca"]

    func run() throws {
        let lock: DataDirLock
        let store: FileStore
        do {
            guard FileManager.default.fileExists(atPath: dataDir + "/state") else {
                throw StoreError(key: dataDir, message: "no state directory here; is this a data_dir?")
            }
            lock = try DataDirLock(dataDir: dataDir)
            store = try FileStore(dataDir: dataDir)
        } catch {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        defer { lock.release() }
        let isCA: (String) -> Bool = { path in Self.caPrefixes.contains { path.hasPrefix($0) } }
        let otherDamage = store.damaged.filter { !isCA($0.relativePath) }
        guard otherDamage.isEmpty else {
            FileHandle.standardError.write(Data(("Error: other state is damaged too; repair it first (nothing was changed):\n"
                + otherDamage.map { "  \(dataDir)/\($0)\n" }.joined()).utf8))
            throw ExitCode(1)
        }
        for file in store.damaged {
            let moved = store.setAside(file)
            print("moved damaged \(dataDir)/state/\(file.relativePath) to \(moved.movedTo)")
        }
        var keys: [String] = []
        for prefix in Self.caPrefixes { keys += ((try? store.list(prefix: prefix)) ?? []).map(\.key) }
        for key in keys {
            guard let copy = store.backUp(key: key, reason: "ca reset") else {
                FileHandle.standardError.write(Data("Error: cannot copy \(store.path(for: key)) aside; nothing was removed\n".utf8))
                throw ExitCode(1)
            }
            print("copied \(store.path(for: key)) to \(copy)")
        }
        do {
            if !keys.isEmpty { try store.commit(keys.map { .delete(key: $0) }) }
        } catch {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        print("The certificate authority was removed; the agent's next start creates a new trust domain.")
    }
}
