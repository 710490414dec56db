// `connectd status`: the managed proxies of a running agent, as a table or JSON.

import ArgumentParser
import ConnectdCore
import Foundation

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the managed proxies of a running agent (GET /v1/agent/proxies).")

    @OptionGroup var client: AgentClientOptions

    @Flag(name: .consul("json"), help: "Print the raw JSON.")
    var json = false

    func run() throws {
        let (host, port) = try client.address()
        var headers: [(String, String)] = []
        if let token = client.effectiveToken() { headers.append(("X-Consul-Token", token)) }
        let response: SimpleHTTPResponse
        do {
            response = try SimpleHTTPClient.send(method: "GET", host: host, port: port, target: "/v1/agent/proxies", headers: headers)
        } catch {
            FileHandle.standardError.write(Data("Error querying the agent: \(error)\n".utf8))
            throw ExitCode(1)
        }
        guard response.status == 200, case .array(let entries)? = try? JSONParser.parse(response.body) else {
            FileHandle.standardError.write(Data("Error querying the agent: \(response.status) \(response.text)\n".utf8))
            throw ExitCode(1)
        }
        if json {
            print(JSONValue.array(entries).encoded(pretty: true), terminator: "")
            return
        }
        let header = ["PROXY", "TARGET", "STATE", "PID", "RESTARTS", "LAST EXIT", "NEXT RETRY / REASON"]
        var rows = [header]
        for entry in entries {
            var lastExit = "-"
            if case .int(let code)? = entry["LastExit"]?["Code"] { lastExit = "code \(code)" }
            if case .int(let signal)? = entry["LastExit"]?["Signal"] { lastExit = "signal \(signal)" }
            if entry["LastExit"]?["Unknown"] == .bool(true) { lastExit = "unknown" }
            var pid = "-"
            if case .int(let value)? = entry["Pid"] { pid = String(value) + (entry["Adopted"] == .bool(true) ? " (adopted)" : "") }
            var restarts = "0"
            if case .int(let value)? = entry["RestartCount"] { restarts = String(value) }
            let note = entry["NextRetryAt"]?.stringValue ?? entry["Reason"]?.stringValue ?? ""
            rows.append([entry["ID"]?.stringValue ?? "?", entry["TargetServiceID"]?.stringValue ?? "?",
                         entry["State"]?.stringValue ?? "?", pid, restarts, lastExit, note])
        }
        TextTable.print(rows)
    }
}
