import AgentConfig
import Foundation

/// A temporary directory of config files, removed when the value is released.
final class ConfigDirectory {
    let path: String

    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("connectd-cfg-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let file = path + "/" + name
        try! text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    func load(_ overrides: ConfigFragment = ConfigFragment(), dev: Bool = false, requireDataDir: Bool = false) throws(ConfigErrors) -> AgentConfiguration {
        try ConfigLoader.load(sources: ConfigSources(directories: [path]), overrides: overrides, dev: dev,
                              requireDataDir: requireDataDir, hostName: "testhost")
    }

    /// Every problem's text when loading fails; [] when it succeeds.
    func problems(dev: Bool = false, requireDataDir: Bool = false) -> [String] {
        do {
            _ = try load(dev: dev, requireDataDir: requireDataDir)
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }
}

/// Parses one document as a config file named `name`.
func fragment(_ text: String, name: String = "test.json") -> (ConfigFragment?, [String]) {
    let (fragment, problems) = ConfigLoader.fragment(fromBytes: Array(text.utf8), file: name)
    return (fragment, problems.map(\.description))
}
