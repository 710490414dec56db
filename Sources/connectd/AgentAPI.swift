// Calls to the running agent's HTTP API for the CLI's commands: the agent address and token from
// the flags or the environment, a clear message and exit status 1 on any failure.

import ArgumentParser
import ConnectdCore
import Foundation

enum AgentAPI {
    static func send(_ client: AgentClientOptions, method: String, target: String, body: [UInt8] = []) throws -> SimpleHTTPResponse {
        let (host, port) = try client.address()
        var headers: [(String, String)] = []
        if let token = client.effectiveToken() { headers.append(("X-Consul-Token", token)) }
        do {
            let response = try SimpleHTTPClient.send(method: method, host: host, port: port, target: target, headers: headers,
                                                     body: body, timeoutSeconds: 60)
            guard response.status == 200 else {
                FileHandle.standardError.write(Data("Error: \(response.status) \(response.text)\n".utf8))
                throw ExitCode(1)
            }
            return response
        } catch let error as SimpleHTTPError {
            FileHandle.standardError.write(Data("Error contacting the agent at \(host):\(port): \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// GET `target`, parsed; exits 1 with the agent's answer when it is not JSON.
    static func json(_ client: AgentClientOptions, _ target: String) throws -> JSONValue {
        let response = try send(client, method: "GET", target: target)
        guard let value = try? JSONParser.parse(response.body) else {
            FileHandle.standardError.write(Data("Error: the agent's answer to \(target) is not JSON\n".utf8))
            throw ExitCode(1)
        }
        return value
    }

    static func activeRootID(_ client: AgentClientOptions) throws -> String {
        let response = try send(client, method: "GET", target: "/v1/connect/ca/roots")
        return (try? JSONParser.parse(response.body))?["ActiveRootID"]?.stringValue ?? "?"
    }
}
