import ConnectdCore
import Foundation
import Glibc
import Testing

/// Whether this machine lets the tests mount a tmpfs (root in a sandbox may not).
let canMountTmpfs: Bool = {
    guard getuid() == 0 else { return false }
    let probe = FileManager.default.temporaryDirectory.appendingPathComponent("connectd-probe-\(UUID().uuidString)").path
    guard mkdir(probe, 0o700) == 0 else { return false }
    defer { rmdir(probe) }
    guard mount("tmpfs", probe, "tmpfs", 0, "size=64k") == 0 else { return false }
    umount(probe)
    return true
}()

/// A real full disk: a small tmpfs (root only) filled until a few pages are left. A register
/// either answers 200 and survives a restart, or is refused and leaves nothing behind. (Seen:
/// with 0 pages free the journal cannot be written, 500; with 1 page the journal fits but a
/// record does not, 200, and the change is finished from the journal.)
@Suite(.serialized, .enabled(if: canMountTmpfs, "mounting a tmpfs needs root (CAP_SYS_ADMIN)")) struct FullDiskTests {
    @Test func aServiceExistsAfterARestartExactlyWhenItsRegisterSucceeded() async throws {
        let mountPoint = FileManager.default.temporaryDirectory.appendingPathComponent("connectd-full-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mounted = try runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", mountPoint])
        try #require(mounted == 0, "mount tmpfs")
        defer {
            _ = try? runTool("/bin/umount", [mountPoint])
            try? FileManager.default.removeItem(atPath: mountPoint)
        }
        let dataDir = mountPoint + "/data"
        let filler = mountPoint + "/filler"
        var answers: [String: Int] = [:]
        try await TestAgent.with(dataDir: dataDir) { agent in
            for free in 0...8 {
                let fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
                defer { close(fd) }
                // Fill the disk page by page, then give `free` pages back.
                let page = [UInt8](repeating: 0x61, count: 4096)
                var size = 0
                while page.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == 4096 { size += 4096 }
                #expect(ftruncate(fd, off_t(max(0, size - free * 4096))) == 0)
                let id = "s\(free)"
                let response = try await agent.request("PUT", "/v1/agent/service/register",
                                                       body: #"{"ID": "\#(id)", "Name": "svc", "Port": \#(1000 + free), "Meta": {"k": "\#(String(repeating: "v", count: 512))"}}"#)
                answers[id] = response.status
                let listed = try await agent.json("/v1/agent/services")
                #expect((listed[id] != nil) == (response.status == 200), "\(id): memory agrees with the answer \(response.status)")
                unlink(filler)
            }
        }
        #expect(answers.values.contains(200), "some register had room: \(answers)")
        #expect(answers.values.contains { $0 != 200 }, "some register had none: \(answers)")
        try await TestAgent.with(dataDir: dataDir) { agent in
            let listed = try await agent.json("/v1/agent/services")
            for (id, status) in answers.sorted(by: { $0.key < $1.key }) {
                #expect((listed[id] != nil) == (status == 200), "\(id): answered \(status), after a restart \(listed[id] == nil ? "absent" : "present")")
            }
        }
    }

    func runTool(_ path: String, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
