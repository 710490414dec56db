import AgentConfig
import Foundation
import Glibc

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

    /// The problems of a directory holding only `document` as `name`, with paths relative to it.
    static func problems(ofFile name: String, _ document: String) -> [String] {
        let dir = ConfigDirectory()
        dir.write(name, document)
        return dir.problems().map { $0.replacingOccurrences(of: dir.path + "/", with: "") }
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

/// A bound AF_UNIX socket at `path` (a file that is neither regular nor a FIFO).
struct UnixSocketFile {
    let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EINVAL) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { Glibc.close(fd); throw POSIXError(.EADDRINUSE) }
    }

    func close() { Glibc.close(fd) }
}
