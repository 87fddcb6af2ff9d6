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

    /// A refused document, about to be kept.
    public struct Refusal: Sendable {
        public let aggregateType: String
        public let aggregateID: String
        public let aggregateVersion: Int
        /// The event that asked for the document (`Reindex` when a reindex did).
        public let eventType: String
        /// The refused document, as JSON.
        public let document: String
        public let occurredAtMs: Int64
        public let errorStatus: Int
        public let errorType: String?

        public init(aggregateType: String, aggregateID: String, aggregateVersion: Int, eventType: String, document: String,
                    occurredAtMs: Int64, errorStatus: Int, errorType: String?) {
            (self.aggregateType, self.aggregateID, self.aggregateVersion, self.eventType) = (aggregateType, aggregateID, aggregateVersion, eventType)
            (self.document, self.occurredAtMs, self.errorStatus, self.errorType) = (document, occurredAtMs, errorStatus, errorType)
        }
    }

    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// Keeps refused documents, on `connection` (inside the caller's transaction, if any).
    public static func record(_ refusals: [Refusal], on connection: LibPQConnection) throws {
        for r in refusals {
            try connection.query(
                """
                INSERT INTO dead_letters (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at,
                                          error_status, error_type)
                VALUES ($1, $2, $3, $4, $5::jsonb, \(SQL.ts(6)), $7, $8)
                """,
                [r.aggregateType, r.aggregateID, r.aggregateVersion, r.eventType, r.document, r.occurredAtMs, r.errorStatus, r.errorType])
        }
    }

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
    /// transaction (no long-held locks); returns how many. `ANY(ARRAY(…))` keeps each step a
    /// primary-key lookup (an `IN` subquery may be planned as a scan of the whole table per step).
    public func purge(olderThanSeconds seconds: Int) async throws -> Int {
        var total = 0
        while true {
            let deleted = try await pool.query(
                """
                DELETE FROM dead_letters WHERE id = ANY(ARRAY(
                    SELECT id FROM dead_letters WHERE failed_at < now() - make_interval(secs => $1) ORDER BY id LIMIT 1000))
                """, [seconds]
            ).affectedRows
            total += deleted
            if deleted < 1000 { return total }
        }
    }
}
