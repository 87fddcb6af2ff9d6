import ElasticsearchClient
import LibPQClient
import ReadModel

extension DriftVerifier {
    /// Turns walk candidates into drift that is still wrong once pending events are counted,
    /// reading in the order that makes the comparison sound while commands keep arriving:
    ///
    /// 1. PostgreSQL's versions of the candidates (time t0);
    /// 2. which of them still have an event in the outbox, for the order or its customer (t1).
    ///    An event leaves the outbox only after its document was acknowledged, so with none
    ///    pending at t1, every version committed by t0 had reached the index before t1;
    /// 3. the index, by realtime GET (t2 > t1): it must hold at least the t0 version;
    /// 4. for ids the index holds and PostgreSQL did not at t0, PostgreSQL again (t3 > t2):
    ///    orders are never deleted and are indexed only after they commit, so one still absent
    ///    at t3 is a true extra, and one present was merely placed during the walk.
    func settle(_ candidates: [Drift], report: inout Report) async throws -> [Drift] {
        let ids = candidates.map(\.id)
        let current = try await currentVersions(ids)
        let pending = try await withPendingEvents(Array(current.keys))
        let indexed = try await indexedVersions(ids.filter { !pending.contains($0) })
        var drift: [Drift] = []
        var absent: [String] = []
        for id in ids {
            if pending.contains(id) { report.lagging += 1; continue }
            switch (current[id], indexed[id]) {
            case (_?, nil): drift.append(.missing(id))
            case (let version?, let seen?) where seen < version: drift.append(.stale(id, indexed: seen, current: version))
            case (nil, _?): absent.append(id)
            default: continue
            }
        }
        let placedMeanwhile = try await currentVersions(absent)
        report.lagging += placedMeanwhile.count
        drift += absent.filter { placedMeanwhile[$0] == nil }.map(Drift.extra)
        return drift
    }

    /// Current composite versions of those of `ids` that exist.
    func currentVersions(_ ids: [String]) async throws -> [String: Int64] {
        guard !ids.isEmpty else { return [:] }
        var versions: [String: Int64] = [:]
        for row in try await pool.query("""
            SELECT o.id, \(DocumentVersion.sqlExpression) FROM orders o JOIN customers c ON c.id = o.customer_id
            WHERE o.id = ANY($1::text[])
            """, [PostgresTextArray(ids)]) {
            versions[row.string(0)!] = row.int64(1)!
        }
        return versions
    }

    /// Those of the orders `ids` with an event still in the outbox, for the order or its customer.
    func withPendingEvents(_ ids: [String]) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        return Set(try await pool.query("""
            SELECT o.id FROM orders o WHERE o.id = ANY($1::text[]) AND EXISTS (
                SELECT 1 FROM outbox e WHERE (e.aggregate_type = 'order' AND e.aggregate_id = o.id)
                                          OR (e.aggregate_type = 'customer' AND e.aggregate_id = o.customer_id))
            """, [PostgresTextArray(ids)]).map { $0.string(0)! })
    }

    /// The index's versions of `ids` by realtime `_mget` (a search would not see unrefreshed
    /// writes), `versionReadBatch` ids per request.
    func indexedVersions(_ ids: [String]) async throws -> [String: Int64] {
        var versions: [String: Int64] = [:]
        for start in stride(from: 0, to: ids.count, by: Self.versionReadBatch) {
            let batch = Array(ids[start..<min(start + Self.versionReadBatch, ids.count)])
            let found = try await retryingWhileBusy(client, for: readPatience) { try await client.versions(layout.alias, ids: batch, timeout: $0) }
            versions.merge(found) { _, new in new }
        }
        return versions
    }

    struct FixOutcome {
        var fixed = 0
        /// Missing documents a delete tombstone still refuses.
        var blocked: [String] = []
    }

    /// Re-indexes missing and stale orders from their current rows, and deletes true extras after
    /// checking once more, right before acting, that PostgreSQL does not have them.
    func fix(_ drift: [Drift]) async throws -> FixOutcome {
        var outcome = FixOutcome()
        let missing = Set(drift.compactMap { if case .missing(let id) = $0 { id } else { nil } })
        let stale = drift.compactMap { if case .stale(let id, _, _) = $0 { id } else { nil } }
        if !missing.isEmpty || !stale.isEmpty {
            let documents = try await pool.transaction(isolation: .repeatableReadReadOnly) {
                try OrderDocumentSource.documents(ids: missing.sorted() + stale, on: $0)
            }
            let results = try await BulkWriter(client: client, logger: logger).write({ include in
                var request = BulkRequest()
                for (i, d) in documents.enumerated() where include(i) {
                    request.index(layout.alias, id: d.orderID, version: d.externalVersion, requireAlias: true) { d.writeJSON(into: &$0) }
                }
                return request
            }, count: documents.count)
            try results.throwIfRefused()
            for (document, result) in zip(documents, results) {
                switch result {
                case .applied: outcome.fixed += 1
                // A newer version got there meanwhile: fine for a stale document; for a missing
                // one it is a delete tombstone, kept for index.gc_deletes (60 s by default).
                case .stale where missing.contains(document.orderID): outcome.blocked.append(document.orderID)
                case .stale: outcome.fixed += 1
                default: continue
                }
            }
        }
        outcome.fixed += try await deleteExtras(drift.compactMap { if case .extra(let id) = $0 { id } else { nil } })
        return outcome
    }

    /// Deletes documents whose order does not exist, each with the smallest version that removes
    /// it (its own plus one): every real order document's version is at least 2^32 (order version
    /// 1 in the high half), so such a tombstone cannot refuse a later legitimate write.
    private func deleteExtras(_ candidates: [String]) async throws -> Int {
        guard !candidates.isEmpty else { return 0 }
        let existing = try await currentVersions(candidates)
        let extras = candidates.filter { existing[$0] == nil }
        let indexed = try await indexedVersions(extras)
        let targets = extras.compactMap { id in indexed[id].map { (id, $0 + 1) } }
        guard !targets.isEmpty else { return 0 }
        let index = try await retryingWhileBusy(client, for: readPatience) { try await client.aliasTargets(layout.alias, timeout: $0) }.first ?? layout.alias
        let results = try await BulkWriter(client: client, logger: logger).write({ include in
            var request = BulkRequest()
            for (i, (id, version)) in targets.enumerated() where include(i) { request.delete(index, id: id, version: version) }
            return request
        }, count: targets.count)
        try results.throwIfRefused()
        return results.filter { $0 == .applied }.count
    }

    public struct TombstonesOutlasted: Error, CustomStringConvertible {
        public let ids: [String]
        public let waited: Duration
        public var description: String {
            "\(ids.count) document(s) still refused by delete tombstones after \(waited) (is index.gc_deletes longer?): \(ids.prefix(10).joined(separator: ", "))"
        }
    }

    /// Retries documents that delete tombstones refused every few seconds until the tombstones
    /// expire, settling each id again first (the indexer may have written it meanwhile).
    func waitOutTombstones(_ ids: [String], onProgress: @Sendable (String) -> Void) async throws -> Int {
        let started = ContinuousClock.now
        var blocked = ids, fixed = 0
        while !blocked.isEmpty {
            guard ContinuousClock.now - started < tombstoneWait else { throw TombstonesOutlasted(ids: blocked, waited: tombstoneWait) }
            onProgress("waiting for \(blocked.count) delete tombstone(s) to expire (index.gc_deletes, 60 s by default); retrying every 5 s")
            try await Task.sleep(for: .seconds(5))
            // Elasticsearch prunes expired tombstones lazily; a refresh gives it the chance.
            try? await client.refresh(layout.alias)
            var ignored = Report()
            let drift = try await settle(blocked.map(Drift.missing), report: &ignored)
            let outcome = try await fix(drift)
            fixed += blocked.count - drift.count + outcome.fixed  // settled meanwhile, or fixed now
            blocked = outcome.blocked
        }
        return fixed
    }
}
