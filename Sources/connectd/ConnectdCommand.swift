// connectd: the command-line entry. `agent` runs the daemon; `validate`, `reload` and `version`
// are the operator's tools. Flags follow Consul's CLI.

import AgentConfig
import ArgumentParser
import ConnectdAgent
import ConnectdCore
import Foundation
import Logging

let connectdVersion = "0.1.0"

struct ConnectdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connectd",
        abstract: "Supervises Consul Connect managed proxies on a systemd host and serves their agent API.",
        subcommands: [AgentCommand.self, ProxyCommand.self, ValidateCommand.self, ReloadCommand.self, StatusCommand.self, CACommand.self, FleetCommand.self, VersionCommand.self, DemoHTTPCommand.self])
}

enum ProcessEnvironment {
    static func value(_ name: String) -> String? { ProcessInfo.processInfo.environment[name] }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(cString: buffer)
    }
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")

    func run() {
        print("connectd v\(connectdVersion)")
        print("Consul API compatibility: 1.5.3 (managed proxies)")
    }
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check config files and directories; print every problem and exit 1 when there is one.")

    @Argument(help: "Config files or directories (*.json, *.hcl).")
    var paths: [String]

    @Flag(name: .consul("quiet"), help: "Print nothing on success.")
    var quiet = false

    func run() throws {
        var sources = ConfigSources()
        for path in paths {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                sources.directories.append(path)
            } else {
                sources.files.append(path)
            }
        }
        do {
            let configuration = try ConfigLoader.load(sources: sources, dev: false, requireDataDir: false,
                                                      hostName: ProcessEnvironment.hostName())
            if !quiet {
                print("Configuration is valid! (\(configuration.services.count) services, \(configuration.services.filter { $0.managedProxy != nil }.count) managed proxies)")
            }
        } catch {
            for problem in error.problems { FileHandle.standardError.write(Data("\(problem)\n".utf8)) }
            FileHandle.standardError.write(Data("\(error.problems.count) problem(s) found\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Ask the running agent to reload its configuration; waits until it is applied or refused.")

    @OptionGroup var client: AgentClientOptions

    func run() throws {
        let (host, port) = try client.address()
        var headers: [(String, String)] = []
        if let token = client.effectiveToken() { headers.append(("X-Consul-Token", token)) }
        do {
            let response = try SimpleHTTPClient.send(method: "PUT", host: host, port: port, target: "/v1/agent/reload",
                                                     headers: headers, timeoutSeconds: 120)
            guard response.status == 200 else {
                FileHandle.standardError.write(Data("Error reloading: \(response.status) \(response.text)\n".utf8))
                throw ExitCode(1)
            }
            print("Configuration reload triggered")
        } catch let error as SimpleHTTPError {
            FileHandle.standardError.write(Data("Error reloading: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
