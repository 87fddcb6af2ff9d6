import LibPQClient
import Logging
import OrderStore
import Synchronization

/// A reindex gives way to live indexing.
///
/// Both write into the same cluster, and during a reindex every live change is written twice (into
/// the live index and the new one). On a busy cluster the reindex's large requests take turns with
/// the live indexers', and the search results support staff look at fall behind for the sake of a
/// background rebuild (in a 30-minute soak on one osmem-server the live backlog grew to about 31,500
/// events during a reindex, even with this waiting). So before each page the load waits while the live read side is more
/// than `lagLimit` behind (the age of the oldest outbox event), at most `longestPause` per page:
/// a read side that stays behind for another reason (no indexer running) slows the reindex but
/// cannot stop it.
final class LiveIndexingFirst: Sendable {
    let pool: PostgresPool
    /// 0 turns the yielding off.
    let lagLimit: Duration
    let longestPause: Duration
    let logger: Logger
    private let paused = Mutex(Duration.zero)

    init(pool: PostgresPool, lagLimit: Duration, longestPause: Duration, logger: Logger) {
        self.pool = pool
        self.lagLimit = lagLimit
        self.longestPause = longestPause
        self.logger = logger
    }

    /// How long the load has waited for live indexing so far.
    var totalPause: Duration { paused.withLock { $0 } }

    /// Returns once live indexing is within `lagLimit`, or after `longestPause`. A backlog that
    /// cannot be read (PostgreSQL restarting) does not hold the load up: the page's own read fails then.
    func waitForLiveIndexing() async throws {
        guard lagLimit > .zero else { return }
        let started = ContinuousClock.now
        defer { paused.withLock { $0 += ContinuousClock.now - started } }
        var reported = false
        while ContinuousClock.now - started < longestPause {
            guard let backlog = try? await OutboxBacklog.read(pool), .seconds(backlog.oldestAgeSeconds) > lagLimit else { return }
            if !reported {
                reported = true
                logger.info("live indexing is behind; the reindex waits for it", metadata: [
                    "outbox.events": "\(backlog.events)", "outbox.lag_s": "\(Int(backlog.oldestAgeSeconds))",
                ])
            }
            try await Task.sleep(for: Self.pollInterval)
        }
    }

    static let pollInterval: Duration = .seconds(1)
}
