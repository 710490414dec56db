import Foundation
import Testing

/// Proxy output into journald streams, against a fake journald in a private mount namespace
/// (systemd is not PID 1 here). The fake records each stream's header and data.
@Suite(.serialized) struct JournalTests {
    static let fakeJournald = """
    import os, socket, sys, threading
    os.makedirs("/run/systemd/journal", exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("/run/systemd/journal/stdout")
    server.listen(64)
    lock = threading.Lock()
    def serve(conn, number):
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
            with lock, open(sys.argv[1], "ab") as out:
                out.write(b"[stream %d] " % number + chunk.replace(b"\\n", b"|") + b"\\n")
    n = 0
    while True:
        conn, _ = server.accept()
        n += 1
        threading.Thread(target=serve, args=(conn, n), daemon=True).start()
    """

    @Test func proxyOutputGoesToItsOwnJournalStreams() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"), getuid() == 0 else {
            Issue.record("needs root and unshare(1) for a private mount namespace")
            return
        }
        let dir = makeTemporaryDirectory("journal")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.fakeJournald.write(toFile: dir + "/fake_journald.py", atomically: true, encoding: .utf8)
        try #"{"connect": {"proxy": {"allow_managed_root": true}}, "service": {"name": "web", "port": 8080, "connect": {"proxy": {"command": ["/bin/sh", "-c", "echo hello from $CONNECT_PROXY_ID; echo oops >&2; exec sleep 1000"]}}}}"#
            .write(toFile: dir + "/web.json", atomically: true, encoding: .utf8)
        let script = """
        set -e
        mount -t tmpfs tmpfs /run/systemd
        python3 \(dir)/fake_journald.py \(dir)/journal.out < /dev/null > /dev/null 2>&1 &
        journald=$!
        for i in $(seq 100); do [ -S /run/systemd/journal/stdout ] && break; sleep 0.05; done
        JOURNAL_STREAM=8:1 \(connectdBinary()) agent -data-dir \(dir)/data -config-file \(dir)/web.json -http-port 0 2> \(dir)/agent.log &
        agent=$!
        for i in $(seq 200); do grep -q oops \(dir)/journal.out 2>/dev/null && grep -q hello \(dir)/journal.out && break; sleep 0.05; done
        kill -TERM $agent
        wait $agent
        kill -9 $journald
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["-m", "--propagation", "private", "--", "/bin/sh", "-c", script]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let journal = (try? String(contentsOfFile: dir + "/journal.out", encoding: .utf8)) ?? ""
        // Each stream starts with sd_journal_stream_fd's header: identifier, unit, priority, ...
        #expect(journal.contains("web-proxy||6|0|"), "\(journal)")
        #expect(journal.contains("web-proxy||4|0|"), "\(journal)")
        #expect(journal.contains("hello from web-proxy"))
        #expect(journal.contains("oops"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/data/proxy/logs/web-proxy-stdout.log"))
    }
}
