// `connectd fleet status`: the fleet as a running agent sees it (GET /v1/agent/fleet);
// `connectd fleet remove-host NODE`: retire a host (PUT /v1/agent/fleet/remove-host/NODE).

import ArgumentParser
import ConnectdCore
import Foundation

struct FleetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet", abstract: "Inspect the fleet a running agent belongs to (fleet mode).",
        subcommands: [FleetStatusCommand.self, FleetRemoveHostCommand.self])
}

struct FleetRemoveHostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-host",
        abstract: "Retire a host from the fleet: its catalog entries go now, its intermediate is not renewed, its CSR is refused.",
        discussion: """
        Run it against any agent of the fleet whose etcd user may write removed/ and hosts/ (a root
        holder's role from contrib/fleet/etcd-auth). The host's current intermediate stays valid until
        it expires. To let the host back in, delete the key <key_prefix>v1/removed/NODE in etcd.
        """)

    @OptionGroup var client: AgentClientOptions

    @Argument(help: "The node name of the host to remove.")
    var node: String

    func run() throws {
        let response = try AgentAPI.send(client, method: "PUT", target: "/v1/agent/fleet/remove-host/" + Self.escape(node))
        let deleted = (try? JSONParser.parse(response.body))?["DeletedCatalogEntries"]
        var count = "0"
        if case .int(let value)? = deleted { count = String(value) }
        print("Removed \(node) from the fleet (\(count) catalog entries deleted); its intermediate will not be renewed.")
    }

    static func escape(_ name: String) -> String {
        name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? name
    }
}

struct FleetStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Hosts, etcd members and this agent's view of the fleet (GET /v1/agent/fleet).")

    @OptionGroup var client: AgentClientOptions

    @Flag(name: .consul("json"), help: "Print the raw JSON.")
    var json = false

    func run() throws {
        let status = try AgentAPI.json(client, "/v1/agent/fleet")
        if json {
            print(status.encoded(pretty: true), terminator: "")
            return
        }
        guard status["Mode"]?.stringValue == "fleet" else {
            print("\(status["Node"]?.stringValue ?? "this agent") runs as a single host (no fleet block).")
            return
        }
        let view = status["View"]
        print("node \(text(status["Node"])), keys under \(text(status["KeyPrefix"])), lease \(text(status["Lease"]))")
        var scopes = 0
        if case .array(let list)? = view?["Scopes"] { scopes = list.count }
        print("view: revision \(text(view?["Revision"])), lag \(text(view?["Lag"])), \(text(view?["Keys"])) keys in \(scopes) scopes, \(text(view?["Phase"]))")
        if let source = status["HostsFrom"]?.stringValue, source != "etcd" { print("hosts from \(source)") }
        print("")
        var hosts = [["HOST", "ADDRESS", "LEASE", "LAST SEEN", "SERVICES", "INTERMEDIATE UNTIL", "UNDER ROOT", "ACKNOWLEDGED"]]
        if case .array(let list)? = status["Hosts"] {
            for host in list {
                let lease = host["Removed"] == .bool(true) ? "removed" : host["LeaseAlive"] == .bool(true) ? "alive" : "none"
                let seen = host["LeaseAlive"] == .bool(true) ? "now" : text(host["LastSeen"])
                hosts.append([text(host["Node"]), text(host["Address"]), lease, seen, text(host["Services"]), text(host["IntermediateNotAfter"]),
                              short(text(host["IntermediateRootID"])), short(text(host["AcknowledgedRootID"]))])
            }
        }
        TextTable.print(hosts)
        print("")
        var members = [["ETCD ENDPOINT", "HEALTHY", "LEADER", "REVISION", "ERRORS"]]
        if case .array(let list)? = status["Etcd"] {
            for member in list {
                var errors: [String] = []
                if case .array(let items)? = member["Errors"] { errors = items.compactMap(\.stringValue) }
                members.append([text(member["Endpoint"]), member["Healthy"] == .bool(true) ? "yes" : "no",
                                member["Leader"] == .bool(true) ? "leader" : "", text(member["Revision"]), errors.joined(separator: "; ")])
            }
        }
        TextTable.print(members)
    }

    private func text(_ value: JSONValue?) -> String {
        switch value {
        case .string(let text)?: text
        case .int(let number)?: String(number)
        case .bool(let flag)?: String(flag)
        default: "-"
        }
    }

    /// A root ID's first bytes (`97:27:a8:06…`).
    private func short(_ id: String) -> String { id.count > 12 ? String(id.prefix(11)) + "…" : id }
}
