import LibPQClient
@testable import OrderIndexer
import Testing

/// The backlog gauges stay cheap however long the outbox grows, and still say what is waiting.
@Suite struct OutboxGaugeTests {
    @Test func theBacklogIsCountedUpToItsLimitAndTheLagIsTheOldestEventsAge() async throws {
        try await TestDatabase.with { database in
            let empty = try #require(try await database.pool.query(IndexerService.backlogSQL, [10]).first)
            #expect(empty.int(0) == 0)
            #expect(Double(empty.string(1) ?? "") == 0)
            try await database.pool.query("""
                INSERT INTO outbox (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at, created_at)
                SELECT 'order', 'o-' || i, 1, 'OrderPlaced', '{}', now(), clock_timestamp() - make_interval(secs => 100 - i)
                FROM generate_series(1, 25) AS i
                """)
            let row = try #require(try await database.pool.query(IndexerService.backlogSQL, [10]).first)
            #expect(row.int(0) == 10)  // capped
            let lag = try #require(Double(row.string(1) ?? ""))
            #expect(lag >= 99 && lag < 110)  // the first event, created 99 s ago
            #expect(try await database.pool.query(IndexerService.backlogSQL, [1000]).first?.int(0) == 25)
        }
    }
}
