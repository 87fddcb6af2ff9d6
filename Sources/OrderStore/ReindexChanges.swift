import LibPQClient
import OrderDomain

/// The changes a running reindex still has to copy into its new index: one row per aggregate of
/// each event a live indexer claimed while the reindex was registered (`reindex_changes`).
///
/// Why that is every change the load can have missed: the load reads each page after the
/// registration committed, so a page holds every change committed before it was read. A change
/// committed after that has its event claimed later still, by a claim statement that starts after
/// the registration committed and so sees it (while the reindex holds its lock) and records the
/// aggregate in the same statement (`recordClaimedSQL`). The reindex reads the current documents
/// of what was recorded, which are at least as new as the recorded change; external versions
/// keep whichever write is newer, in the new index as in the live one.
///
/// Rows are read oldest first and deleted by their `seq` once their documents were acknowledged;
/// a row that commits late (out of `seq` order) is read by a later pass, never skipped, since
/// nothing is read past a cursor.
public enum ReindexChanges {
    /// Appended to the claim's `WITH`: records the aggregates of the claimed events (`claimed`,
    /// with `aggregate_type` and `aggregate_id`) for every registered target in force. No target,
    /// no row: without a reindex the claim only pays a look at the empty `index_targets`, in a
    /// function that keeps its plan (migration 0006 says why, and why its later snapshot is as
    /// good). One row, always: the claim's final `SELECT` must join it, since PostgreSQL runs a
    /// `WITH` query that modifies nothing only where it is read.
    public static let recordClaimedSQL = """
        recorded AS (
            SELECT record_reindex_changes(array_agg(aggregate_type), array_agg(aggregate_id),
                                          \(AdvisoryLock.reindex.lockTableKey.classid), \(AdvisoryLock.reindex.lockTableKey.objid))
            FROM claimed)
        """

    public struct Change: Sendable, Equatable {
        public let seq: Int64
        public let aggregateType: String
        public let aggregateID: String
    }

    /// The oldest `limit` changes recorded for `target`, with up to `limit` later ones of the same
    /// aggregates: an order placed, paid and shipped while the reindex loaded is copied once, not
    /// three times, and a customer renamed twice has its orders copied once. Taking the later rows
    /// along is safe because each of them committed before this read, after the change it records,
    /// and the documents are read after this read, so they hold that change.
    ///
    /// The result starts with the oldest `limit` rows, so it has fewer than `limit` only when fewer
    /// are recorded (`FullLoader.CatchUpEnd.fewerThan`). Rows of the same aggregates are found
    /// through the index by aggregate (migration 0005).
    public static func oldest(for target: String, limit: Int, on connection: LibPQConnection) throws -> [Change] {
        try connection.query("""
            WITH oldest AS (SELECT aggregate_type, aggregate_id FROM reindex_changes WHERE target = $1 ORDER BY seq LIMIT $2)
            SELECT seq, aggregate_type, aggregate_id FROM reindex_changes
            WHERE target = $1 AND (aggregate_type, aggregate_id) IN (SELECT aggregate_type, aggregate_id FROM oldest)
            ORDER BY seq LIMIT 2 * $2::bigint
            """, [target, limit]).map(Change.init(row:))
    }

    /// The changes recorded for `target` on the orders `orderIDs` that this connection's snapshot
    /// sees. Read in the transaction that read those orders' documents (a repeatable-read snapshot),
    /// each of them committed before the documents were read, after the change it records: the
    /// documents hold those changes, and once they are acknowledged the records can go (the load
    /// covers them; the catch-up would only copy the same documents again). Customers' records stay:
    /// a customer's orders are spread over pages the load read before.
    public static func covered(orders orderIDs: [String], for target: String, on connection: LibPQConnection) throws -> [Change] {
        guard !orderIDs.isEmpty else { return [] }
        return try connection.query("""
            SELECT seq, aggregate_type, aggregate_id FROM reindex_changes
            WHERE target = $1 AND aggregate_type = $2 AND aggregate_id = ANY($3::text[])
            """, [target, DomainEvent.AggregateType.order.rawValue, PostgresTextArray(orderIDs)]).map(Change.init(row:))
    }

    /// How many changes are recorded for `target` (for a catch-up's progress line).
    public static func count(for target: String, on pool: PostgresPool) async throws -> Int {
        try await pool.query("SELECT count(*) FROM reindex_changes WHERE target = $1", [target]).first?.int(0) ?? 0
    }

    /// Forgets changes whose documents were acknowledged by the new index.
    public static func remove(_ changes: [Change], of target: String, from pool: PostgresPool) async throws {
        guard !changes.isEmpty else { return }
        try await pool.query("DELETE FROM reindex_changes WHERE target = $1 AND seq = ANY($2::text[]::bigint[])",
                             [target, PostgresTextArray(changes.map { String($0.seq) })])
    }

    /// Forgets everything recorded for `target` (its reindex finished or stopped), or for every
    /// target (a reindex starting under the lock: whatever is there was left by one that died).
    public static func removeAll(for target: String? = nil, from pool: PostgresPool) async throws {
        if let target {
            try await pool.query("DELETE FROM reindex_changes WHERE target = $1", [target])
        } else {
            try await pool.query("DELETE FROM reindex_changes")
        }
    }
}

extension ReindexChanges.Change {
    /// A row with `seq`, `aggregate_type` and `aggregate_id`.
    init(row: PostgresRow) {
        self.init(seq: row.int64("seq")!, aggregateType: row.string("aggregate_type")!, aggregateID: row.string("aggregate_id")!)
    }
}
