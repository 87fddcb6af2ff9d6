import LibPQClient
import Logging

/// Keeps PostgreSQL's own background work out of a latency comparison between phases
/// (`IsolationBenchmark`): autovacuum off for the whole cluster while the phases run (scripts/bench
/// starts a cluster of its own, so nothing else depends on it), and `settle` before each phase.
struct QuietDatabase {
    let pool: PostgresPool
    let logger: Logger
    /// How long `settle` waits for the indexer to drain what the phase before left.
    var drainLimit: Duration = .seconds(180)

    func autovacuumOff() async throws { try await setAutovacuum("off") }

    /// Back on; a failure is logged, not thrown: it is the clean-up of a run that is over.
    func autovacuumOn() async {
        do { try await setAutovacuum(nil) } catch { logger.warning("could not turn autovacuum back on", metadata: ["error": "\(error)"]) }
    }

    /// `ALTER SYSTEM` cannot take a parameter, and runs outside a transaction: the values are fixed
    /// here, never caller input.
    private func setAutovacuum(_ value: String?) async throws {
        try await pool.withConnection { connection in
            try connection.executeTrusted(value.map { "ALTER SYSTEM SET autovacuum = \($0)" } ?? "ALTER SYSTEM RESET autovacuum")
            try connection.executeTrusted("SELECT pg_reload_conf()")
        }
    }

    /// The indexer has drained the outbox (or `drainLimit` passed, logged), this database is
    /// vacuumed and analyzed, and a checkpoint has written out every dirty page.
    func settle() async throws {
        let deadline = ContinuousClock.now + drainLimit
        while try await !BenchEnvironment.outboxIsEmpty(pool) {
            guard ContinuousClock.now < deadline else {
                logger.warning("the indexer did not drain the outbox before the next phase", metadata: ["bench.limit_s": "\(drainLimit)"])
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        try await pool.withConnection { connection in
            try connection.executeTrusted("VACUUM ANALYZE")
            try connection.executeTrusted("CHECKPOINT")
        }
    }
}
