import LibPQClient
import Metrics
import Synchronization
import OrderDomain
import OrderStore

/// One outbox event as a worker claimed it.
struct ClaimedEvent: Sendable {
    let id: Int64
    let aggregateType: String
    let aggregateID: String
    let aggregateVersion: Int
    let eventType: String
    /// How far an earlier attempt got fanning out this customer change (the last order id it indexed).
    let fanOutAfter: String?
    let occurredAtMs: Int64
    let createdAtUs: Int64

    var isOrderEvent: Bool { aggregateType == "order" }
}

/// A document Elasticsearch refused for good, kept with the event that asked for it.
struct Rejection: Sendable {
    let orderID: String
    let status: Int
    let errorType: String?
    let document: String
}

/// The outbox rows one worker holds, by lease rather than by an open transaction.
///
/// Every statement here is a transaction of its own lasting milliseconds: a claim
/// writes the worker's name and an expiry (PostgreSQL's clock, so indexers on
/// different hosts agree) into up to `limit` unleased rows; Elasticsearch is then
/// called with no transaction open; the rows are deleted once their documents are
/// acknowledged. Why nothing is lost and nothing goes backwards:
///
/// - A row is deleted only after a document built from rows read *after* the row
///   was claimed (so after its transaction committed) was acknowledged for the
///   alias. That document is at least as new as the event.
/// - Rows are never skipped by an offset: a transaction that commits after
///   later-numbered ones has its rows claimed later.
/// - A worker that crashes, stops, or cannot reach Elasticsearch before its lease
///   lapses loses the rows to whoever claims next; one that gives up hands them back
///   at once (after a timeout on a busy cluster: claimable after a pause). Two workers
///   may then index the same order; external versions make the older write a no-op, so
///   the overlap is harmless.
struct OutboxLease: Sendable {
    let pool: PostgresPool
    /// Unique per worker and process start, so a restarted worker never mistakes old leases for its own.
    let owner: String
    let duration: Duration
    /// The alias this worker indexes into: no claims while it is being rebuilt.
    let alias: String

    /// Claims, and records the claimed aggregates for a running reindex in the same statement
    /// (`ReindexChanges`, which says why that is enough for the reindex to miss nothing). The
    /// statement's snapshot is taken after every claimed event committed, so a reindex registered
    /// before any of them is seen; one that is no longer in force (it no longer holds its lock) is not.
    ///
    /// Nothing is claimed for an alias whose self-heal rebuild is under way (`IndexRebuilds`): the
    /// events stay in the outbox until the rebuild is done.
    ///
    /// `id = ANY(ARRAY(…))`, not `id IN (…)`: for `IN` the planner hashes the chosen ids and
    /// scans the whole outbox to find them, so a claim cost grew with the backlog (38 ms per
    /// 2,000-event claim at 100,000 events); the array is looked up through the primary key.
    static let claimSQL = """
        WITH claimed AS (
            UPDATE outbox SET lease_owner = $2, lease_until = clock_timestamp() + $3::interval, attempts = attempts + 1
            WHERE id = ANY(ARRAY(
                SELECT id FROM outbox WHERE (lease_until IS NULL OR lease_until < clock_timestamp())
                    AND \(IndexRebuilds.noneUnderWaySQL(aliasParameter: 4))
                ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED))
            RETURNING id, aggregate_type, aggregate_id, aggregate_version, event_type, fanout_after,
                      \(SQL.ms("occurred_at")), \(SQL.us("created_at", as: "created_at_us"))),
        \(ReindexChanges.recordClaimedSQL)
        SELECT claimed.* FROM claimed CROSS JOIN recorded ORDER BY claimed.id
        """

    /// Claims up to `limit` unleased (or lapsed) events, oldest first; one statement, committed
    /// when it returns. Synchronous, so the caller can read on the same visit to the pool.
    func claim(limit: Int, on connection: LibPQConnection) throws -> [ClaimedEvent] {
        let rows = try connection.queryReconnectingIfStale(Self.claimSQL, [limit, owner, duration, alias])
        return rows.map {
            ClaimedEvent(id: $0.int64("id")!, aggregateType: $0.string("aggregate_type")!, aggregateID: $0.string("aggregate_id")!,
                         aggregateVersion: $0.int("aggregate_version")!, eventType: $0.string("event_type")!,
                         fanOutAfter: $0.string("fanout_after"), occurredAtMs: $0.int64("occurred_at")!,
                         createdAtUs: $0.int64("created_at_us")!)
        }
    }

    /// Extends the lease on `ids` and records on `progress.id` how far its fan-out got; false when
    /// that row is no longer this worker's (the lease lapsed and another worker took it over).
    func renew(_ ids: [Int64], progress: (id: Int64, fanOutAfter: String)) async throws -> Bool {
        try await !pool.query("""
            UPDATE outbox SET lease_until = clock_timestamp() + $3::interval,
                              fanout_after = CASE WHEN id = $4 THEN $5 ELSE fanout_after END
            WHERE id = ANY($1::text[]::bigint[]) AND lease_owner = $2 RETURNING id
            """, [PostgresTextArray(ids.map(String.init)), owner, duration, progress.id, progress.fanOutAfter])
            .filter { $0.int64("id") == progress.id }.isEmpty
    }

    /// Whether a change of `customer` newer than event `id` is in the outbox, claimed or not.
    ///
    /// Such a change makes what an older one's fan-out has left to do redundant: that row is
    /// visible, so it committed, and its own fan-out reads each order after it claims it, so after
    /// that commit (and after the older change's): every document it writes carries the customer
    /// as new as the older fan-out's would, or newer. Looked up by `outbox_aggregate`.
    func newerChangeQueued(ofCustomer customer: String, than id: Int64) async throws -> Bool {
        try await pool.query("""
            SELECT EXISTS (SELECT 1 FROM outbox WHERE aggregate_type = $1 AND aggregate_id = $2 AND id > $3)
            """, [DomainEvent.AggregateType.customer.rawValue, customer, id]).first?.string(0) == "t"
    }

    /// Extends the lease on those of `ids` this worker still holds (the acknowledged ones are gone).
    func extend(_ ids: [Int64]) async throws {
        try await pool.query("""
            UPDATE outbox SET lease_until = clock_timestamp() + $3::interval
            WHERE id = ANY($1::text[]::bigint[]) AND lease_owner = $2
            """, [PostgresTextArray(ids.map(String.init)), owner, duration])
    }

    /// Hands rows back. By default they are claimable by any worker at once, and the indexers are
    /// woken (NOTIFY) so a healthy one takes them before this worker, which backs off, comes back.
    /// With `pause`, nobody may claim them before it has passed: a busy cluster is still working on
    /// the request that timed out, and the same documents sent again now would only queue the
    /// same work twice (`BulkWriter.GaveUp.resendAfter`).
    func release(_ ids: [Int64], pause: Duration? = nil) async throws {
        guard !ids.isEmpty else { return }
        let list = PostgresTextArray(ids.map(String.init))
        if let pause {
            try await pool.query("""
                UPDATE outbox SET lease_owner = NULL, lease_until = clock_timestamp() + $3::interval
                WHERE id = ANY($1::text[]::bigint[]) AND lease_owner = $2
                """, [list, owner, pause])
            return
        }
        try await pool.query("""
            WITH released AS (
                UPDATE outbox SET lease_owner = NULL, lease_until = NULL
                WHERE id = ANY($1::text[]::bigint[]) AND lease_owner = $2 RETURNING id)
            SELECT pg_notify('outbox', '') FROM (SELECT 1 FROM released LIMIT 1) AS any_released
            """, [list, owner])
    }

    /// Deletes acknowledged events and keeps the refused documents, in one short transaction
    /// (a crash between the two would otherwise dead-letter a document twice); without refused
    /// documents, one statement is that transaction.
    func acknowledge(_ ids: [Int64], deadLetters: [(ClaimedEvent, Rejection)] = []) async throws {
        guard !deadLetters.isEmpty else {
            guard !ids.isEmpty else { return }
            try await pool.query(Self.deleteSQL, [PostgresTextArray(ids.map(String.init))])
            return
        }
        try await pool.transaction { connection in
            try DeadLetters.record(deadLetters.map { event, rejection in
                DeadLetters.Refusal(aggregateType: event.aggregateType, aggregateID: event.aggregateID, aggregateVersion: event.aggregateVersion,
                                    eventType: event.eventType, document: rejection.document, occurredAtMs: event.occurredAtMs,
                                    errorStatus: rejection.status, errorType: rejection.errorType)
            }, on: connection)
            if !ids.isEmpty {
                try connection.query(Self.deleteSQL, [PostgresTextArray(ids.map(String.init))])
            }
        }
    }

    static let deleteSQL = "DELETE FROM outbox WHERE id = ANY($1::text[]::bigint[])"
}

/// Extends the leases of the batches a process's workers have in hand, every third of the lease.
///
/// A slow cluster that is still answering must not make a lease lapse while a request is out:
/// another worker would send the same documents again and the busy cluster do the work twice. The
/// bound on holding events stays: a crashed process stops renewing, so its events come back after
/// one lease, and a worker whose cluster fails or stops answering gives them back after its
/// hand-back time and request timeout (`BulkWriter`, `AdaptiveTimeout`).
///
/// One task for the process rather than one per batch: a task started beside every batch, asleep
/// until cancelled when the batch ends, costs thread wake-ups (its cancellation, and its timer
/// firing later), and at a few hundred events a second a batch holds an event or two, so those
/// were paid per event (`bench lag --null-sink`: most of the indexer's CPU is thread switches).
final class LeaseKeeper: Sendable {
    private struct Held: Sendable {
        let lease: OutboxLease
        let ids: [Int64]
    }

    private let held = Mutex<(next: Int, batches: [Int: Held])>((0, [:]))
    /// How often every batch in hand is renewed: a third of the lease.
    let interval: Duration

    init(lease: Duration) { interval = lease / 3 }

    /// Runs `body` while `ids` are renewed with every round of `run()`.
    func holding<T>(_ ids: [Int64], by lease: OutboxLease, _ body: () async throws -> T) async throws -> T {
        let key = held.withLock { state in
            state.next += 1
            state.batches[state.next] = Held(lease: lease, ids: ids)
            return state.next
        }
        defer { held.withLock { _ = $0.batches.removeValue(forKey: key) } }
        return try await body()
    }

    /// Renews every batch in hand each `interval`, until cancelled.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            for batch in held.withLock({ Array($0.batches.values) }) {
                do { try await batch.lease.extend(batch.ids) } catch {
                    Counter(label: "indexer_lease_renewals_failed_total").increment()  // the next one may still be in time
                }
            }
        }
    }
}
