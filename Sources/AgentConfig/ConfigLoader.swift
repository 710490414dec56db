// Reads config files and directories (`*.json` and `*.hcl`, lexical order) into fragments.

import ConnectdCore
import Foundation

/// Where the configuration comes from; kept so `reload` can read the same places again.
public struct ConfigSources: Sendable, Equatable {
    public var files: [String]
    public var directories: [String]

    public init(files: [String] = [], directories: [String] = []) {
        self.files = files
        self.directories = directories
    }
}

public enum ConfigLoader {
    /// Largest config file accepted; a bigger one is almost certainly a mistake.
    public static let maximumFileBytes = 16 << 20

    /// Every file `sources` names, in load order: files first, then each directory's `*.json` and `*.hcl`.
    public static func files(in sources: ConfigSources) -> (files: [String], problems: [ConfigProblem]) {
        var files = sources.files
        var problems: [ConfigProblem] = []
        for directory in sources.directories {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
                problems.append(ConfigProblem(file: directory, keyPath: "", message: "config directory does not exist"))
                continue
            }
            guard isDirectory.boolValue else {
                problems.append(ConfigProblem(file: directory, keyPath: "", message: "not a directory (use -config-file for a file)"))
                continue
            }
            do {
                let names = try FileManager.default.contentsOfDirectory(atPath: directory)
                    .filter { ($0.hasSuffix(".json") || $0.hasSuffix(".hcl")) && !$0.hasPrefix(".") }
                    .sorted()
                files += names.map { (directory as NSString).appendingPathComponent($0) }
            } catch {
                problems.append(ConfigProblem(file: directory, keyPath: "", message: "cannot read directory: \(error.localizedDescription)"))
            }
        }
        return (files, problems)
    }

    /// Parses one file into a fragment, collecting its problems.
    public static func fragment(fromFile path: String) -> (ConfigFragment?, [ConfigProblem]) {
        let sink = ProblemSink(file: path)
        let bytes: [UInt8]
        do throws(ConfigFileReader.Refusal) {
            bytes = try ConfigFileReader.read(path, limit: maximumFileBytes)
        } catch {
            sink.report("", error.message)
            return (nil, sink.problems)
        }
        if bytes.count > maximumFileBytes {
            sink.report("", "file is larger than \(maximumFileBytes >> 20) MiB")
            return (nil, sink.problems)
        }
        return fragment(fromBytes: bytes, file: path)
    }

    /// Parses JSON text, or HCL when `file` ends in `.hcl` (from a file or a test), into a fragment.
    public static func fragment(fromBytes bytes: [UInt8], file: String?) -> (ConfigFragment?, [ConfigProblem]) {
        let sink = ProblemSink(file: file)
        let document: JSONValue
        if file?.hasSuffix(".hcl") == true {
            do throws(HCLSyntaxError) {
                document = try HCLDocument.parse(bytes)
            } catch {
                // `web.hcl:3:14: invalid HCL: ...`, the position where an editor jumps to.
                return (nil, [ConfigProblem(file: "\(file ?? ""):\(error.line):\(error.column)", keyPath: "", message: "invalid HCL: \(error.message)")])
            }
        } else {
            do {
                document = try JSONParser.parse(bytes)
            } catch {
                sink.report("", "invalid JSON: \(error)")
                return (nil, sink.problems)
            }
        }
        let fragment = ConfigFragment.decode(document, sink: sink)
        return (fragment, sink.problems)
    }

    /// Loads every source, then merges and validates with `overrides` (the flags) applied last.
    public static func load(
        sources: ConfigSources, overrides: ConfigFragment = ConfigFragment(), dev: Bool,
        requireDataDir: Bool, hostName: String
    ) throws(ConfigErrors) -> AgentConfiguration {
        let (files, listingProblems) = files(in: sources)
        var problems = listingProblems
        var fragments: [ConfigFragment] = []
        for file in files {
            let (fragment, fileProblems) = fragment(fromFile: file)
            problems += fileProblems
            if let fragment { fragments.append(fragment) }
        }
        let flagSink = ProblemSink(file: "command-line flags")
        overrides.checkValues(sink: flagSink)
        problems += flagSink.problems
        fragments.append(overrides)
        let config: AgentConfiguration
        do throws(ConfigErrors) {
            config = try AgentConfiguration.build(fragments: fragments, dev: dev, requireDataDir: requireDataDir, hostName: hostName)
        } catch {
            throw ConfigErrors(problems + error.problems)
        }
        guard problems.isEmpty else { throw ConfigErrors(problems) }
        return config
    }
}
