// An append-only log file (0600) rotated by size: `x.log` → `x.log.1` → … → `x.log.N`.

#if canImport(Glibc)
import Glibc
#endif

/// Owned by the event thread; not thread-safe on its own.
final class RotatingLogFile: @unchecked Sendable {
    let path: String
    var maxBytes: Int
    var maxFiles: Int
    private var fd: Int32 = -1
    private var size = 0

    init(path: String, maxBytes: Int, maxFiles: Int) {
        self.path = path
        self.maxBytes = maxBytes
        self.maxFiles = maxFiles
        reopen()
    }

    deinit { if fd >= 0 { close(fd) } }

    private func reopen() {
        if fd >= 0 { close(fd) }
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        var info = stat()
        size = fd >= 0 && fstat(fd, &info) == 0 ? Int(info.st_size) : 0
    }

    /// Appends `bytes`, rotating whenever the file would grow past `maxBytes`. A rotation happens
    /// after a complete line when there is one in reach; a single line longer than the limit is cut.
    func append(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes[...]
        while !rest.isEmpty {
            let room = maxBytes - size
            if rest.count <= room {
                writeAll(UnsafeRawBufferPointer(rebasing: rest))
                return
            }
            let window = rest.prefix(max(room, 0))
            if let newline = window.lastIndex(of: UInt8(ascii: "\n")) {
                writeAll(UnsafeRawBufferPointer(rebasing: rest[..<(newline + 1)]))
                rest = rest[(newline + 1)...]
            } else if size == 0 {
                writeAll(UnsafeRawBufferPointer(rebasing: window))
                rest = rest[window.endIndex...]
            }
            rotate()
        }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) {
        guard fd >= 0, bytes.count > 0 else { return }
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
        size += bytes.count
    }

    /// Shifts `path.(i)` to `path.(i+1)` (the oldest falls off), `path` to `path.1`, opens a new `path`.
    func rotate() {
        for index in stride(from: maxFiles - 1, through: 1, by: -1) {
            rename("\(path).\(index)", "\(path).\(index + 1)")
        }
        rename(path, "\(path).1")
        reopen()
    }
}
