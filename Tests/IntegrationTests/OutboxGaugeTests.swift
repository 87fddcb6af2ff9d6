import LibPQClient
import OrderStore
import Testing

/// The backlog gauges stay cheap however long the outbox grows, and still say what is waiting.
@Suite struct OutboxGaugeTests {
    @Test func theBacklogIsCountedUpToItsLimitAndTheLagIsTheOldestEventsAge() async throws {
        try await TestDatabase.with { database in
            #expect(try await OutboxBacklog.read(database.pool, countingUpTo: 10) == OutboxBacklog(events: 0, oldestAgeSeconds: 0))
            try await database.pool.query("""
                INSERT INTO outbox (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at, created_at)
                SELECT 'order', 'o-' || i, 1, 'OrderPlaced', '{}', now(), clock_timestamp() - make_interval(secs => 100 - i)
                FROM generate_series(1, 25) AS i
                """)
            let capped = try await OutboxBacklog.read(database.pool, countingUpTo: 10)
            #expect(capped.events == 10)
            #expect(capped.oldestAgeSeconds >= 99 && capped.oldestAgeSeconds < 110)  // the first event, created 99 s ago
            #expect(try await OutboxBacklog.read(database.pool, countingUpTo: 1000).events == 25)
        }
    }
}
