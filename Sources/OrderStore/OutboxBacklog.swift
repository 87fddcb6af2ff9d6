import LibPQClient

/// How far the read side is behind PostgreSQL: the events still in the outbox and the age of the
/// oldest. Read by the indexers for their metrics and by a reindex, which gives way while live
/// indexing is behind.
public struct OutboxBacklog: Sendable, Equatable {
    /// Events in the outbox, counted up to `countLimit`.
    public var events: Int
    /// Seconds since the oldest event was written (0 when the outbox is empty).
    public var oldestAgeSeconds: Double

    public init(events: Int, oldestAgeSeconds: Double) {
        self.events = events
        self.oldestAgeSeconds = oldestAgeSeconds
    }

    /// The count stops here, and the age is read from the oldest event by key: every process samples
    /// every few seconds, and during a long outage an uncapped `count(*)` and `min(created_at)`
    /// would scan the whole outbox each time, more the longer the outage.
    public static let countLimit = 100_000

    static let sql = """
        SELECT (SELECT count(*) FROM (SELECT 1 FROM outbox LIMIT $1) AS capped),
               COALESCE((SELECT extract(epoch FROM clock_timestamp() - created_at) FROM outbox ORDER BY id LIMIT 1), 0)::float8
        """

    public static func read(_ pool: PostgresPool, countingUpTo limit: Int = countLimit) async throws -> OutboxBacklog {
        let row = try await pool.query(sql, [limit]).first
        return OutboxBacklog(events: row?.int(0) ?? 0, oldestAgeSeconds: row?.string(1).flatMap(Double.init) ?? 0)
    }
}
