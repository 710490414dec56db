// A proxy's stdout and stderr: each a named pipe under data_dir/proxy/pipes, drained by the event
// thread into a rotating file under data_dir/proxy/logs. The child holds its pipe open read-write,
// so its writes never fail while connectd restarts; the next connectd reopens the same pipe and
// drains what was buffered. Nothing is lost at rotation: connectd writes every byte itself.

import CProcShims
import SystemdSupport
#if canImport(Glibc)
import Glibc
#endif

public struct LogSetupError: Error, CustomStringConvertible {
    public var description: String
}

public final class ProxyLogs: @unchecked Sendable {
    public let proxyID: String
    private let streams: [Stream]
    private let events: EventThread
    /// True when the proxy writes straight into journald streams (no pipes, no files).
    public let toJournal: Bool

    final class Stream: @unchecked Sendable {
        let pipePath: String
        let file: RotatingLogFile
        let reader: Int32
        /// Held so the pipe always has a writer: no end-of-file storm when the child exits.
        let keeper: Int32

        init(pipePath: String, logPath: String, maxBytes: Int, maxFiles: Int) throws(LogSetupError) {
            if mkfifo(pipePath, 0o600) != 0 && errno != EEXIST {
                throw LogSetupError(description: "cannot create pipe \(pipePath): \(String(cString: strerror(errno)))")
            }
            var info = stat()
            guard stat(pipePath, &info) == 0, (info.st_mode & S_IFMT) == S_IFIFO else {
                throw LogSetupError(description: "\(pipePath) exists and is not a named pipe")
            }
            reader = open(pipePath, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard reader >= 0 else { throw LogSetupError(description: "cannot open \(pipePath): \(String(cString: strerror(errno)))") }
            keeper = open(pipePath, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            _ = connectd_set_pipe_size(reader, 1 << 20)
            self.pipePath = pipePath
            file = RotatingLogFile(path: logPath, maxBytes: maxBytes, maxFiles: maxFiles)
        }

        /// Reads everything available into the log file (runs on the event thread).
        func drain() {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(reader, $0.baseAddress!, $0.count) }
                if count > 0 {
                    buffer.withUnsafeBytes { file.append(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                    continue
                }
                if count < 0 && errno == EINTR { continue }
                return
            }
        }

        /// A descriptor for the child's stdout/stderr (read-write, see the type's comment).
        func childDescriptor() throws(LogSetupError) -> Int32 {
            let fd = open(pipePath, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { throw LogSetupError(description: "cannot open \(pipePath): \(String(cString: strerror(errno)))") }
            return fd
        }

        func close() {
            Glibc.close(reader)
            if keeper >= 0 { Glibc.close(keeper) }
        }
    }

    /// Opens (creating when needed) the pipes and log files of `proxyID` and starts draining them,
    /// or, with `journal`, checks that journald takes streams (files are the fallback).
    public init(proxyID: String, dataDir: String, maxBytes: Int, maxFiles: Int, events: EventThread,
                journal: Bool = false) throws(LogSetupError) {
        self.proxyID = proxyID
        self.events = events
        if journal, let probe = JournalStream.open(identifier: proxyID, priority: 6) {
            Glibc.close(probe)
            toJournal = true
            streams = []
            return
        }
        toJournal = false
        let pipes = dataDir + "/proxy/pipes"
        let logs = dataDir + "/proxy/logs"
        for directory in [dataDir + "/proxy", pipes, logs] where mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw LogSetupError(description: "cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        let name = Self.fileName(proxyID)
        streams = [
            try Stream(pipePath: "\(pipes)/\(name)-stdout", logPath: "\(logs)/\(name)-stdout.log", maxBytes: maxBytes, maxFiles: maxFiles),
            try Stream(pipePath: "\(pipes)/\(name)-stderr", logPath: "\(logs)/\(name)-stderr.log", maxBytes: maxBytes, maxFiles: maxFiles),
        ]
        for stream in streams {
            events.add(stream.reader) { _ in stream.drain() }
        }
    }

    /// Fresh descriptors for a child's stdout and stderr; the spawner closes them after spawning.
    public func childDescriptors() throws(LogSetupError) -> (stdout: Int32, stderr: Int32) {
        if toJournal {
            guard let out = JournalStream.open(identifier: proxyID, priority: 6) else {
                throw LogSetupError(description: "journald does not accept a stream for \(proxyID)")
            }
            guard let err = JournalStream.open(identifier: proxyID, priority: 4) else {
                Glibc.close(out)
                throw LogSetupError(description: "journald does not accept a stream for \(proxyID)")
            }
            return (out, err)
        }
        let out = try streams[0].childDescriptor()
        do {
            return (out, try streams[1].childDescriptor())
        } catch {
            Glibc.close(out)
            throw error
        }
    }

    /// Stops draining (after a final drain) and closes the pipes; `removePipes` deletes them too.
    public func close(removePipes: Bool) {
        for stream in streams {
            events.remove(stream.reader)
            stream.drain()
            stream.close()
            if removePipes { unlink(stream.pipePath) }
        }
    }

    /// File names safe for any proxy ID.
    static func fileName(_ proxyID: String) -> String {
        String(proxyID.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
    }
}
