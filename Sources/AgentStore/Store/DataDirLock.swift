// One process per data_dir: an exclusive lock on `<data_dir>/lock`, held while the agent runs
// (and by offline commands such as `connectd ca reset`, which must not run beside it).

import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive `flock` on `<data_dir>/lock`, released by ``release()`` or when the lock is freed.
/// The descriptor is close-on-exec, so a managed proxy never inherits it and a dead agent never
/// leaves its data_dir locked. The file holds the holder's PID, for the error another one prints.
public final class DataDirLock: Sendable {
    private let descriptor: Mutex<Int32?>

    /// Takes the lock, or throws naming the PID that holds it.
    public init(dataDir: String) throws(StoreError) {
        let path = dataDir + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError(key: path, message: "cannot open: \(AtomicFile.errnoText())") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            let holder = (try? AtomicFile.read(path, limit: 64)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            close(fd)
            guard busy else { throw StoreError(key: path, message: "cannot lock: \(AtomicFile.errnoText())") }
            let pid = holder.trimmingCharacters(in: .whitespacesAndNewlines)
            throw StoreError(key: path, message: "in use by another connectd" + (pid.isEmpty ? "" : " (pid \(pid))")
                + "; one agent per data_dir")
        }
        let text = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) == 0 { _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } }
        descriptor = Mutex(fd)
    }

    /// Gives the lock up (idempotent).
    public func release() {
        descriptor.withLock { fd in
            if let open = fd { close(open) }
            fd = nil
        }
    }

    deinit { release() }
}
