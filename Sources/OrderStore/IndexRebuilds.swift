import LibPQClient

/// Self-heal rebuilds under way (`index_rebuilds`): a row per alias, written before the alias
/// is created and deleted once every order was acknowledged, so that a rebuild killed half-way
/// is found and done again by whichever indexer next takes `AdvisoryLock.indexRebuild`.
///
/// While a row is there no worker of any indexer claims events for that alias
/// (`noneUnderWaySQL`): the rebuild writes every order anyway, and live batches sent into the
/// index it is filling only make the search server do that work twice. In a 30-minute soak the
/// other indexers' workers, coming out of their backoff after the outage, drained most of an
/// 11,000-event backlog into the index while it was rebuilt: a process learns of another's
/// rebuild only at its next alias check (`IndexerService.rebuilding`, which then also spares
/// its workers the empty claims).
public enum IndexRebuilds {
    /// A condition for the claim: no rebuild of the alias given as parameter `$n` is under way.
    /// Evaluated once per statement, in the claim's snapshot: a claim that starts after a rebuild
    /// registered sees its row.
    public static func noneUnderWaySQL(aliasParameter n: Int) -> String {
        "NOT EXISTS (SELECT 1 FROM index_rebuilds WHERE alias = $\(n))"
    }

    /// Whether a rebuild of `alias` is registered (under way, or left by a rebuild that died).
    public static func isUnderWay(for alias: String, on pool: PostgresPool) async throws -> Bool {
        try await !pool.query("SELECT 1 FROM index_rebuilds WHERE alias = $1", [alias]).isEmpty
    }

    /// Registers a rebuild of `alias` (kept if one is registered already: it was not finished).
    public static func begin(for alias: String, on pool: PostgresPool) async throws {
        try await pool.query("INSERT INTO index_rebuilds (alias) VALUES ($1) ON CONFLICT DO NOTHING", [alias])
    }

    /// The rebuild of `alias` is done: every order was acknowledged; workers claim again.
    public static func finish(for alias: String, on pool: PostgresPool) async throws {
        try await pool.query("DELETE FROM index_rebuilds WHERE alias = $1", [alias])
    }
}
