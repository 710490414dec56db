// Crash-safe file writes: temp file, fsync, rename, fsync of the directory; 0600 files, 0700 dirs.

import ConnectdCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum AtomicFile {
    /// Creates `path` and its parents with mode 0700 when missing.
    public static func makeDirectory(_ path: String) throws(StoreError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o700) != 0 && errno != EEXIST {
                throw StoreError(key: path, message: "cannot create directory \(current): \(errnoText())")
            }
        }
    }

    /// Writes `bytes` to `path` so that a crash leaves either the old or the new file, never a mix.
    public static func write(_ bytes: [UInt8], to path: String) throws(StoreError) {
        let directory = parentDirectory(of: path)
        try makeDirectory(directory)
        let temporary = "\(path).tmp-\(UInt32.random(in: .min ... .max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError(key: path, message: "cannot create \(temporary): \(errnoText())") }
        var failure: String?
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = "cannot write \(temporary): \(errnoText())"
                    return
                }
                offset += written
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = "cannot fsync \(temporary): \(errnoText())" }
        if close(fd) != 0 && failure == nil { failure = "cannot close \(temporary): \(errnoText())" }
        if failure == nil && rename(temporary, path) != 0 { failure = "cannot rename into \(path): \(errnoText())" }
        if let failure {
            unlink(temporary)
            throw StoreError(key: path, message: failure)
        }
        try syncDirectory(directory)
    }

    /// Removes `path` (missing is fine) and syncs its directory.
    public static func remove(_ path: String) throws(StoreError) {
        if unlink(path) != 0 && errno != ENOENT {
            throw StoreError(key: path, message: "cannot remove: \(errnoText())")
        }
        try syncDirectory(parentDirectory(of: path))
    }

    /// Reads a whole file, refusing one larger than `limit` bytes.
    public static func read(_ path: String, limit: Int = 16 << 20) throws(StoreError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError(key: path, message: "cannot open: \(errnoText())") }
        defer { close(fd) }
        let result: [UInt8]
        do throws(FileDescriptorReading.Errno) {
            result = try FileDescriptorReading.readAll(fd, limit: limit)
        } catch {
            throw StoreError(key: path, message: "cannot read: \(error)")
        }
        if result.count > limit { throw StoreError(key: path, message: "larger than \(limit) bytes") }
        return result
    }

    static func syncDirectory(_ directory: String) throws(StoreError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError(key: directory, message: "cannot open directory: \(errnoText())") }
        defer { close(fd) }
        if fsync(fd) != 0 { throw StoreError(key: directory, message: "cannot fsync directory: \(errnoText())") }
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
