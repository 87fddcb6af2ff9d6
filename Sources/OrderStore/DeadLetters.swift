import LibPQClient

/// Events whose document Elasticsearch refused permanently (the payload kept is
/// that document, to see why). `retry` moves them
/// back into the outbox (after the cause was fixed, e.g. a mapping change).
public struct DeadLetters: Sendable {
    public struct Entry: Sendable {
        public let id: Int64
        public let aggregateType: String
        public let aggregateID: String
        public let aggregateVersion: Int
        public let eventType: String
        public let errorStatus: Int
        public let errorType: String?
        public let failedAt: String
    }

    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    public func list(limit: Int = 100) async throws -> [Entry] {
        try await pool.query(
            """
            SELECT id, aggregate_type, aggregate_id, aggregate_version, event_type, error_status, error_type,
                   to_char(failed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            FROM dead_letters ORDER BY id LIMIT $1
            """, [limit]
        ).map {
            Entry(id: $0.int64(0)!, aggregateType: $0.string(1)!, aggregateID: $0.string(2)!, aggregateVersion: $0.int(3)!,
                  eventType: $0.string(4)!, errorStatus: $0.int(5)!, errorType: $0.string(6), failedAt: $0.string(7)!)
        }
    }

    /// Re-queues the given dead letters (all when `ids` is nil); returns how many.
    public func retry(ids: [Int64]?) async throws -> Int {
        try await pool.transaction { connection in
            let filter = ids == nil ? "" : " WHERE id = ANY($1::bigint[])"
            let parameters: [(any PostgresBindable)?] = ids.map { [PostgresTextArray($0.map(String.init))] } ?? []
            let moved = try connection.query(
                """
                WITH moved AS (DELETE FROM dead_letters\(filter) RETURNING *)
                INSERT INTO outbox (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at)
                SELECT aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at FROM moved ORDER BY id
                """, parameters
            )
            return moved.affectedRows
        }
    }

    /// Deletes dead letters older than the retention, 1000 per short
    /// transaction (no long-held locks); returns how many.
    public func purge(olderThanSeconds seconds: Int) async throws -> Int {
        var total = 0
        while true {
            let deleted = try await pool.query(
                """
                DELETE FROM dead_letters WHERE id IN (
                    SELECT id FROM dead_letters WHERE failed_at < now() - make_interval(secs => $1) ORDER BY id LIMIT 1000)
                """, [seconds]
            ).affectedRows
            total += deleted
            if deleted < 1000 { return total }
        }
    }
}
