// Fault injection for the file store's tests: fail one chosen file write, as a full disk would.

import Synchronization

/// Counts the file store's writes and removals, and fails the one that was armed.
public final class StoreFaults: Sendable {
    private let countdown = Mutex<Int?>(nil)

    public init() {}

    /// The `n`th write or removal from now (1 is the next) fails with ENOSPC's text; later ones succeed.
    public func failWrite(_ n: Int) {
        countdown.withLock { $0 = n }
    }

    /// Disarms a fault that has not fired yet.
    public func disarm() {
        countdown.withLock { $0 = nil }
    }

    func check(_ path: String) throws(StoreError) {
        let fail = countdown.withLock { countdown -> Bool in
            guard let left = countdown else { return false }
            countdown = left == 1 ? nil : left - 1
            return left == 1
        }
        if fail { throw StoreError(key: path, message: "cannot write: No space left on device (injected)") }
    }
}
