import LibPQClient
@testable import OrderIndexer
import OrderStore
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
            let plan = try await database.pool.query("EXPLAIN " + OutboxLease.claimSQL, [2000, "test-worker", Duration.seconds(30), "orders"])
                .compactMap { $0.string(0) }.joined(separator: "\n")
            // `id IN (SELECT …)` was planned as a hash join over a scan of the whole outbox.
            #expect(!plan.contains("Seq Scan on outbox"), "the claim scans the backlog:\n\(plan)")
            #expect(plan.contains("Index Scan using outbox_pkey"))
        }
    }

    /// While a self-heal rebuild of the alias is registered, no worker claims: live batches sent
    /// into the index being filled would make the server do the rebuild's work twice. Another
    /// alias's workers are not held back, and claims resume once the rebuild is done.
    @Test func nothingIsClaimedForAnAliasWhileItIsBeingRebuilt() async throws {
        try await TestDatabase.with { database in
            try await database.pool.query("""
                INSERT INTO outbox (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at)
                SELECT 'order', 'o-' || i, 1, 'OrderPlaced', '{}', now() FROM generate_series(1, 3) AS i
                """)
            func claim(for alias: String) async throws -> [Int64] {
                let lease = OutboxLease(pool: database.pool, owner: "worker-\(alias)", duration: .seconds(30), alias: alias)
                return try await database.pool.withConnection { try lease.claim(limit: 10, on: $0).map(\.id) }
            }
            try await IndexRebuilds.begin(for: "orders", on: database.pool)
            #expect(try await claim(for: "orders").isEmpty)
            let elsewhere = try await claim(for: "other_orders")
            #expect(elsewhere.count == 3)
            try await OutboxLease(pool: database.pool, owner: "worker-other_orders", duration: .seconds(30), alias: "other_orders")
                .release(elsewhere)
            try await IndexRebuilds.finish(for: "orders", on: database.pool)
            #expect(try await claim(for: "orders").count == 3)
        }
    }
}
