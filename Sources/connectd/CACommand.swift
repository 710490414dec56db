// `connectd ca rotate` / `connectd ca get-config`: the CA through the running agent's HTTP API;
// `connectd ca reset` (CAResetCommand.swift) works on a stopped agent's data_dir.

import ArgumentParser
import ConnectdCore
import Foundation

struct CACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Inspect or rotate the built-in certificate authority of a running agent.",
        subcommands: [CARotateCommand.self, CAGetConfigCommand.self, CAResetCommand.self])
}

struct CARotateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Rotate the CA root: a new key (generated, or read from -private-key), cross-signed by the old root.",
        discussion: """
        The old root stays trusted and listed until it is pruned (2 × LeafCertTTL after the rotation);
        leaf certificates are re-issued with the cross-signed certificate in their chain, so open
        and new connections keep working during the rotation.
        """)

    @OptionGroup var client: AgentClientOptions

    @Option(name: .consul("private-key"), help: "A PEM file with the new root's P-256 key (default: generate one).")
    var privateKeyFile: String?

    @Option(name: .consul("root-cert"), help: "A PEM file with the new root certificate for -private-key (default: made from the key).")
    var rootCertFile: String?

    func run() throws {
        var config: [(String, JSONValue)] = []
        if let privateKeyFile {
            config.append(("PrivateKey", .string(try Self.read(privateKeyFile))))
            if let rootCertFile { config.append(("RootCert", .string(try Self.read(rootCertFile)))) }
        } else {
            guard rootCertFile == nil else { throw ValidationError("-root-cert needs -private-key") }
            config.append(("GenerateKey", .bool(true)))
        }
        let body = JSONValue.object([("Provider", .string("consul")), ("Config", .object(config))])
        let before = try AgentAPI.activeRootID(client)
        _ = try AgentAPI.send(client, method: "PUT", target: "/v1/connect/ca/configuration", body: Array(body.encoded().utf8))
        let after = try AgentAPI.activeRootID(client)
        guard before != after else {
            print("The CA configuration was applied; the root did not change (the same key is already active).")
            return
        }
        print("Rotated the CA root: \(before) -> \(after)")
    }

    static func read(_ path: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read \(path)")
        }
        return text
    }
}

struct CAGetConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get-config", abstract: "Print the CA configuration (never a key).")

    @OptionGroup var client: AgentClientOptions

    func run() throws {
        let response = try AgentAPI.send(client, method: "GET", target: "/v1/connect/ca/configuration?pretty")
        print(response.text, terminator: "")
    }
}
