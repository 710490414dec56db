// The one way a reader of the store sets aside a record it cannot decode: moved, logged, never fatal.

import Logging

extension DurableStore {
    /// Quarantines `key` (see ``DurableStore/quarantine(key:reason:)``) and logs where it went.
    public func quarantine(_ key: String, reason: String, logger: Logger) {
        let moved = quarantine(key: key, reason: reason)
        logger.warning("moved an unreadable state record aside",
                       metadata: ["key": "\(key)", "moved_to": "\(moved.movedTo)", "reason": "\(reason)"])
    }
}
