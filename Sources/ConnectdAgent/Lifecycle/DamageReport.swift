// The refusal to start on damaged durable state: which file, why it matters, and the way out.

import AgentStore

enum DamageReport {
    /// One message naming every damaged file, each with what the operator can do about it.
    static func describe(_ files: [FileStore.DamagedFile], dataDir: String, revision: UInt64) -> String {
        var lines = ["data_dir \(dataDir) holds damaged state; connectd does not start on it rather than lose it:"]
        var caDamaged = false
        for file in files {
            lines.append("  \(dataDir)/\(file)")
            if file.relativePath.hasPrefix("ca/") || file.relativePath == "agent/ca.json" {
                caDamaged = true
            } else if file.relativePath == "agent/node-id.json" {
                lines.append("    this host's node ID: restore the file from a backup, or delete it to give the host a new ID.")
            } else if file.relativePath.hasPrefix("intentions/") {
                lines.append("    an intention: restore the file from a backup, or delete it (the intention is then gone: "
                    + "check the rest with GET /v1/connect/intentions and create it again).")
            } else if file.relativePath == "revision.json" {
                lines.append("    the change index: restore it from a backup, or move it aside to start at revision \(revision), the "
                    + "highest a record holds (blocking clients holding a higher index then see it go back once).")
            } else {
                lines.append("    restore the file from a backup.")
            }
        }
        if caDamaged { lines.append(caWayOut(dataDir: dataDir)) }
        return lines.joined(separator: "\n")
    }

    /// What to do about a damaged certificate authority.
    static func caWayOut(dataDir: String) -> String {
        "connectd never replaces a CA on its own, since every certificate and every peer's trust depend on it. Restore "
            + "the CA files from a backup, or stop the agent and run `connectd ca reset -data-dir \(dataDir)` to create "
            + "a new trust domain on purpose."
    }
}
