import ElasticsearchClient
import LibPQClient
import OrderStore
import ReadModel

extension IndexerService {
    /// Creates index and alias when missing and refills the new index from PostgreSQL
    /// (guarantee 5). An advisory lock makes exactly one indexer process do it; new events
    /// wait in the outbox meanwhile (no worker claims while the rebuild is registered,
    /// `IndexRebuilds`) and drain in large batches once it is done. A batch claimed just before
    /// the registration may still land in the new index: external versions keep that harmless.
    ///
    /// The registration (`IndexRebuilds`), written before the alias is created and removed after
    /// the load, makes the rebuild survive its indexer: a rebuild killed half-way leaves it,
    /// and whichever indexer next gets the lock loads everything again into the alias.
    func rebuildIfMissing() async {
        do {
            guard try await needsRebuild() else { return }
            try await pool.withReservedConnection { connection in
                let locked = try await connection.query("SELECT pg_try_advisory_lock($1)", [AdvisoryLock.indexRebuild.key])
                    .first?.bool("pg_try_advisory_lock") ?? false
                guard locked else { return }
                do {
                    try await rebuildLocked()
                } catch {
                    _ = try? await connection.query("SELECT pg_advisory_unlock($1)", [AdvisoryLock.indexRebuild.key])
                    throw error
                }
                _ = try await connection.query("SELECT pg_advisory_unlock($1)", [AdvisoryLock.indexRebuild.key])
            }
        } catch {
            logger.warning("could not check or rebuild the order index", metadata: ["error": "\(error)"])
        }
    }

    /// The alias is missing, or a rebuild was started and has not finished (under way
    /// elsewhere, or abandoned by a killed indexer).
    private func needsRebuild() async throws -> Bool {
        let underWay = try await IndexRebuilds.isUnderWay(for: layout.alias, on: pool)
        rebuilding.set(underWay)
        if underWay { return true }
        return try await client.aliasTargets(layout.alias).isEmpty
    }

    /// Under the lock, checked again: another indexer may have finished meanwhile.
    private func rebuildLocked() async throws {
        guard try await needsRebuild() else { return }
        try await IndexRebuilds.begin(for: layout.alias, on: pool)
        rebuilding.set()
        if let created = try await layout.ensureAlias(client) {
            logger.warning("created a new order index; refilling it from PostgreSQL", metadata: ["es.index": "\(created)"])
        } else {
            logger.warning("an earlier rebuild did not finish; refilling the order index from PostgreSQL")
        }
        let loader = FullLoader(pool: pool, writer: writer, batchSize: configuration.rebuildBatchSize, logger: logger)
        let summary = try await loader.load(into: layout.alias, throughAlias: true)
        try await IndexRebuilds.finish(for: layout.alias, on: pool)
        rebuilding.set(false)
        logger.info("rebuild finished", metadata: ["es.documents": "\(summary.documents)"])
    }
}
