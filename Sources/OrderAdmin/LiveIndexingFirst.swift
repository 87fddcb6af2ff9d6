import LibPQClient
import Logging
import OrderStore
import Synchronization

/// A reindex gives way to live indexing.
///
/// Both write into the same cluster, and during a reindex every live change is written twice (into
/// the live index and the new one). On a busy cluster the reindex's large requests take turns with
/// the live indexers', and the search results support staff look at fall behind for the sake of a
/// background rebuild (in a 30-minute soak on one osmem-server the live backlog grew to about
/// 31,500 events during a reindex, even with this waiting). So before each page the load waits
/// while the live read side is more than `lagLimit` behind (the age of the oldest outbox event),
/// at most `longestPause` per page and
/// `share` of the time since the reindex started in all: a read side that stays behind for another
/// reason (no indexer running, a cluster too busy for both) slows the reindex but cannot stop it, and
/// a reindex that waits longer also makes every live change be written twice for longer.
final class LiveIndexingFirst: Sendable {
    let pool: PostgresPool
    /// 0 turns the yielding off.
    let lagLimit: Duration
    let longestPause: Duration
    /// At most this share of the running time is spent waiting; 1 or more: no such bound.
    let share: Double
    let logger: Logger
    private let started = ContinuousClock.now
    private let paused = Mutex(Duration.zero)

    init(pool: PostgresPool, lagLimit: Duration, longestPause: Duration, share: Double, logger: Logger) {
        self.pool = pool
        self.lagLimit = lagLimit
        self.longestPause = longestPause
        self.share = share
        self.logger = logger
    }

    /// The longest the next wait may be: `longestPause`, or less so that the waiting so far plus
    /// this one stays within `share` of the running time once it is over:
    /// `(paused + w) ≤ share · (elapsed + w)`.
    static func allowedPause(elapsed: Duration, paused: Duration, share: Double, longestPause: Duration) -> Duration {
        guard share < 1 else { return longestPause }
        let room = (elapsed.seconds * share - paused.seconds) / (1 - share)
        return min(longestPause, .seconds(max(0, room)))
    }

    /// How long the load has waited for live indexing so far.
    var totalPause: Duration { paused.withLock { $0 } }

    /// Returns once live indexing is within `lagLimit`, or after `longestPause`. A backlog that
    /// cannot be read (PostgreSQL restarting) does not hold the load up: the page's own read fails then.
    func waitForLiveIndexing() async throws {
        guard lagLimit > .zero else { return }
        let waitStarted = ContinuousClock.now
        let allowed = Self.allowedPause(elapsed: waitStarted - started, paused: totalPause, share: share, longestPause: longestPause)
        defer { paused.withLock { $0 += ContinuousClock.now - waitStarted } }
        var reported = false
        while ContinuousClock.now - waitStarted < allowed {
            guard let backlog = try? await OutboxBacklog.read(pool), .seconds(backlog.oldestAgeSeconds) > lagLimit else { return }
            if !reported {
                reported = true
                logger.info("live indexing is behind; the reindex waits for it", metadata: [
                    "outbox.events": "\(backlog.events)", "outbox.lag_s": "\(Int(backlog.oldestAgeSeconds))",
                ])
            }
            try await Task.sleep(for: max(.zero, min(Self.pollInterval, allowed - (ContinuousClock.now - waitStarted))))
        }
    }

    static let pollInterval: Duration = .seconds(1)
}
