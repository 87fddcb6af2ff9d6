import LibPQClient
@testable import OrderIndexer
import Testing

/// A claim's cost follows the claim's size, not the backlog's: under a long outage the outbox
/// holds hundreds of thousands of events, and every worker claims again every few milliseconds.
@Suite struct OutboxClaimPlanTests {
    @Test func aClaimLooksUpItsEventsByKeyInsteadOfScanningTheBacklog() async throws {
        try await TestDatabase.with { database in
            try await database.pool.query("""
                INSERT INTO outbox (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at)
                SELECT 'order', 'o-' || i, 1, 'OrderPlaced', '{}', now() FROM generate_series(1, 50000) AS i
                """)
            try await database.pool.query("ANALYZE outbox")
            let plan = try await database.pool.query("EXPLAIN " + OutboxLease.claimSQL, [2000, "test-worker", Duration.seconds(30)])
                .compactMap { $0.string(0) }.joined(separator: "\n")
            // `id IN (SELECT …)` was planned as a hash join over a scan of the whole outbox.
            #expect(!plan.contains("Seq Scan on outbox"), "the claim scans the backlog:\n\(plan)")
            #expect(plan.contains("Index Scan using outbox_pkey"))
        }
    }
}
