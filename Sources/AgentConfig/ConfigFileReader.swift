// Reads one config file without ever blocking on what is not a regular file: a FIFO, socket,
// device or directory named `*.json` is refused by name instead of hanging a reload.

import ConnectdCore
import Glibc

enum ConfigFileReader {
    /// Why a config file could not be read; the text is the problem's message.
    struct Refusal: Error { var message: String }

    /// The bytes of the regular file at `path` (a symlink to one is followed), at most `limit` + 1
    /// so the caller can tell an oversized file.
    static func read(_ path: String, limit: Int) throws(Refusal) -> [UInt8] {
        var info = stat()
        guard stat(path, &info) == 0 else { throw Refusal(message: openFailure(errno)) }
        try requireRegular(info)
        // O_NONBLOCK: if the file was swapped for a FIFO after the stat, open must not wait for a writer.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { throw Refusal(message: openFailure(errno)) }
        defer { close(fd) }
        guard fstat(fd, &info) == 0 else { throw Refusal(message: "cannot read file: \(String(cString: strerror(errno)))") }
        try requireRegular(info)
        do throws(FileDescriptorReading.Errno) {
            return try FileDescriptorReading.readAll(fd, limit: limit)
        } catch {
            throw Refusal(message: "cannot read file: \(error)")
        }
    }

    private static func requireRegular(_ info: stat) throws(Refusal) {
        switch info.st_mode & S_IFMT {
        case S_IFREG: return
        case S_IFDIR: throw Refusal(message: "not a regular file (a directory)")
        case S_IFIFO: throw Refusal(message: "not a regular file (a FIFO)")
        case S_IFSOCK: throw Refusal(message: "not a regular file (a socket)")
        case S_IFCHR, S_IFBLK: throw Refusal(message: "not a regular file (a device)")
        default: throw Refusal(message: "not a regular file")
        }
    }

    private static func openFailure(_ code: Int32) -> String {
        switch code {
        case ENOENT: "no such file"
        case EACCES, EPERM: "cannot open file: permission denied"
        default: "cannot open file: \(String(cString: strerror(code)))"
        }
    }
}
