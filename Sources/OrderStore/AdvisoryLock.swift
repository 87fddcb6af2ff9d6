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

    /// Seed of the per-key idempotency locks, `hashtextextended(key, seed)`:
    /// requests with the same `Idempotency-Key` run one after another.
    public static let idempotencyKeySeed: Int64 = 7238
}
