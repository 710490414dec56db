// How many HTTP connections the agent may hold at once: the descriptor limit minus a reserve, so
// proxy spawns, their log pipes and the data_dir never fail because of HTTP clients.

#if canImport(Glibc)
import Glibc
#endif

enum ConnectionBudget {
    /// Descriptors kept for everything that is not an HTTP connection: a quarter of the limit,
    /// at least 256 (a managed proxy holds a few: its pidfd and log pipes, more while spawning).
    static func reserve(forLimit limit: Int) -> Int { max(256, limit / 4) }

    /// The total cap for a process whose soft `RLIMIT_NOFILE` is `limit` (never below 16).
    static func totalCap(forLimit limit: Int) -> Int { max(16, limit - reserve(forLimit: limit)) }

    /// The soft descriptor limit of this process now.
    static func currentLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur == rlim_t.max { return 1 << 20 }
        return Int(clamping: limit.rlim_cur)
    }
}
