/// Every PostgreSQL advisory lock the system takes, in one place so that no
/// two uses can collide.
public enum AdvisoryLock: Int64, CaseIterable, Sendable {
    /// `order-admin migrate`: one migrator at a time (transaction lock).
    case schemaMigration = 7_238_117_001
    /// One indexer process rebuilds a vanished index (session lock).
    case indexRebuild = 7_238_117_002
    /// One `order-admin reindex` at a time (session lock).
    case reindex = 7_238_117_003

    public var key: Int64 { rawValue }

    /// Whether the session running the query holds this lock.
    public var isHeldHereSQL: String {
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid() AND \(lockColumns))"
    }

    private var lockColumns: String {
        "database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND " + keyColumns
    }

    private var keyColumns: String { "classid = \(lockTableKey.classid) AND objid = \(lockTableKey.objid) AND objsubid = 1" }

    /// The key as `pg_locks` shows this session lock: its high half (`classid`) and low half
    /// (`objid`), with `objsubid` 1 (`pg_locks` lists every database's locks: advisory locks are
    /// per database). What a holder registers is in force only while it runs, so a holder that was
    /// killed leaves nothing behind (`record_reindex_changes`, migration 0006).
    public var lockTableKey: (classid: UInt64, objid: UInt64) {
        (UInt64(bitPattern: key) >> 32, UInt64(bitPattern: key) & 0xFFFF_FFFF)
    }

    /// Seed of the per-key idempotency locks, `hashtextextended(key, seed)`:
    /// requests with the same `Idempotency-Key` run one after another.
    public static let idempotencyKeySeed: Int64 = 7238
}
