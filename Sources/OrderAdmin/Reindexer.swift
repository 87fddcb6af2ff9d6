import ElasticsearchClient
import JSONSupport
import Logging
import OrderStore
import LibPQClient
import ReadModel

/// Zero-downtime rebuild of the order index:
///
/// 1. refuse if another reindex holds the advisory lock; remove what a killed one left (its
///    registration and half-loaded index);
/// 2. create `<alias>_v<N>` from `mappings/`;
/// 3. give it a catch-up alias and register that in `index_targets`, so live
///    indexers record what every event they claim from then on changed
///    (`ReindexChanges`: nothing committed during the load is lost);
/// 4. stream every order, a page per short transaction, all read *after* the
///    registration (`FullLoader` says why no single snapshot is needed); a
///    refused document becomes a dead letter, and the reindex then fails;
/// 5. catch up: copy the recorded changes' current documents, until a read finds
///    less than a page of them;
/// 6. refresh, confirm this session still holds the lock, then in one atomic
///    `_aliases` call point the alias at the new index and remove the catch-up alias;
/// 7. unregister, and catch up with what was recorded until then: changes the
///    live indexers wrote into the old index just before the swap. From the swap
///    on, they write into the new one;
/// 8. delete the old index unless `keepOld`.
///
/// Live indexers write every change once, into the alias, and only record it for the reindex.
/// (Until 2026-12 they wrote it into both indexes; beside a 30-minute soak's load on one
/// osmem-server the doubled live writes left a reindex loading at 58-87 documents/s, never done
/// within 20 minutes, while the live backlog grew.) The catch-up sends the changes in pages of
/// `batchSize`, like the load, the cheapest way for the cluster to take them.
///
/// A registration is in force only while the lock is held (`AdvisoryLock.lockTableKey`): a reindex
/// that is killed stops the live indexers' recording at once. For the same reason a reindex whose
/// session ended (a PostgreSQL restart) fails instead of swapping: the indexers stopped recording
/// then, so it may miss changes.
///
/// The load and the catch-up write to the catch-up alias with `require_alias`, so a write that
/// races its removal fails harmlessly instead of re-creating a stray index.
/// Any failure before the swap, and a cancellation (`order-admin reindex` cancels on
/// SIGINT and SIGTERM), unregisters and deletes the new index (and with it the catch-up
/// alias) and leaves the alias untouched. Idempotent cluster
/// calls wait out a busy cluster (`retryingWhileBusy`); the alias swap reads the alias back
/// before it tries again (`swapAlias`), because a second attempt after one that was applied is
/// not a no-op.
public struct Reindexer: Sendable {
    public struct Options: Sendable {
        /// Orders per bulk request (`--batch-size`): the size that loads fastest while leaving an index
        /// that stays cheap to update (`BulkSizing.documentsPerLoadRequest`).
        public var batchSize = BulkSizing.documentsPerLoadRequest
        /// Bulk requests the load keeps out at once (`--requests-in-flight`); the next page is read
        /// meanwhile either way. A server gives each request out about an equal turn, so more
        /// requests take a larger share of a cluster the live indexers keep busy, and the live
        /// changes wait: in a 30-minute soak on one saturated osmem-server, two made the reindex
        /// faster (78–84 docs/s, was 58–74) but the live backlog grew to 61,000 events (33,500 with
        /// one) and the read side was not exact 10 minutes after the load. Fresh search results
        /// matter more than a background rebuild's speed, so one by default; a cluster with
        /// headroom (several Elasticsearch nodes) can take more.
        public var requestsInFlight = 1
        /// The load waits before a page while live indexing is more than this behind
        /// (`--yield-at-lag`; zero: never), at most `longestPausePerPage` (`LiveIndexingFirst`).
        public var yieldAtLag: Duration = .seconds(10)
        public var longestPausePerPage: Duration = .seconds(20)
        /// The most of its running time the load spends waiting for live indexing. Where live indexing
        /// stays behind whatever the reindex does (a saturated cluster), waiting before every page
        /// only makes the reindex, and the double writes it brings, last longer: in a 30-minute soak
        /// a reindex that waited 20 s before every page was stopped by the job runner's timeout.
        public var mostOfRunTimeYielded = 0.25
        public var keepOld = false
        public var dryRun = false
        public var mappingPath: String?
        public init() {}
    }

    public struct Report: Sendable {
        public var newIndex: String
        public var oldIndices: [String]
        /// Documents the load wrote.
        public var documents: Int
        /// Documents of orders changed meanwhile, copied after the load (some more than once).
        public var caughtUp = 0
        /// Orders the new index refused after the swap (dead letters); before it, a refusal fails the reindex.
        public var rejected: [String]
        public var dryRun: Bool
        /// How long the load waited for live indexing (`LiveIndexingFirst`).
        public var yielded: Duration = .zero
        /// How long the load took (its waits for live indexing included), and the catch-up before the swap.
        public var loading: Duration = .zero
        public var catchingUp: Duration = .zero
    }

    public enum ReindexError: Error, CustomStringConvertible {
        case alreadyRunning
        case rejectedDocuments(Int)
        case failed(step: String, underlying: String)
        /// Cancelled (the command got SIGINT or SIGTERM).
        case stopped(step: String)
        /// The alias was swapped, but copying the changes made just before the swap failed.
        case incompleteAfterSwap(newIndex: String, underlying: String)

        public var description: String {
            switch self {
            case .alreadyRunning: "another reindex is running (its advisory lock is held); try again when it has finished"
            case .rejectedDocuments(let n):
                "Elasticsearch rejected \(n) document(s), kept as dead letters (order-admin dead-letters list); the live index was left untouched"
            case .failed(let step, let underlying): "reindex failed while \(step): \(underlying); the live index was left untouched"
            case .stopped(let step):
                "reindex stopped while \(step); the live index was left untouched and the new index removed (if the cluster did not answer in time, an error above names it, and the next reindex removes it)"
            case .incompleteAfterSwap(let newIndex, let underlying):
                "the alias now points at \(newIndex), but changes made just before the swap may be missing from it (\(underlying)); the old index was kept: run order-admin verify --repair"
            }
        }
    }

    let pool: PostgresPool
    let client: ElasticsearchClient
    let layout: IndexLayout
    let options: Options
    let logger: Logger

    public init(pool: PostgresPool, client: ElasticsearchClient, layout: IndexLayout, options: Options, logger: Logger) {
        self.pool = pool
        self.client = client
        self.layout = layout
        self.options = options
        self.logger = logger
    }

    public func run(progress: @escaping @Sendable (_ done: Int, _ total: Int) -> Void = { _, _ in }) async throws -> Report {
        try await pool.withReservedConnection { lockConnection in
            let locked = try await lockConnection.query("SELECT pg_try_advisory_lock($1)", [AdvisoryLock.reindex.key]).first?.string(0) == "t"
            guard locked else { throw ReindexError.alreadyRunning }
            do {
                let report = try await runLocked(lock: lockConnection, progress: progress)
                _ = try? await lockConnection.query("SELECT pg_advisory_unlock($1)", [AdvisoryLock.reindex.key])
                return report
            } catch {
                await Self.evenIfCancelled { _ = try? await lockConnection.query("SELECT pg_advisory_unlock($1)", [AdvisoryLock.reindex.key]) }
                throw error
            }
        }
    }

    private func runLocked(lock: ReservedConnection, progress: @escaping @Sendable (Int, Int) -> Void) async throws -> Report {
        if !options.dryRun { try await Self.step("removing what an interrupted reindex left") { try await removeAbandoned() } }
        let mapping = try await Self.step("reading the mapping") { try IndexLayout.mapping(path: options.mappingPath) }
        let old = try await Self.step("reading the alias") {
            try await retryingWhileBusy(client) { try await client.aliasTargets(layout.alias, timeout: $0) }
        }
        let newIndex = layout.newIndexName()
        var loader = FullLoader(pool: pool, writer: BulkWriter(client: client, probeIndex: layout.alias, logger: logger), batchSize: options.batchSize,
                                requestsInFlight: options.requestsInFlight, logger: logger)
        let liveFirst = LiveIndexingFirst(pool: pool, lagLimit: options.yieldAtLag, longestPause: options.longestPausePerPage,
                                          share: options.mostOfRunTimeYielded, logger: logger)
        loader.beforeEachPage = liveFirst.waitForLiveIndexing
        let total = try await loader.countOrders()
        if options.dryRun {
            return Report(newIndex: newIndex, oldIndices: old, documents: total, rejected: [], dryRun: true)
        }
        // A retry after a timed-out attempt that did create it finds the index there (`false`): the name is this run's own.
        _ = try await Self.step("creating \(newIndex)") {
            try await retryingWhileBusy(client) { try await client.createIndex(newIndex, body: mapping, timeout: $0) }
        }
        do {
            let catchUp = layout.catchUpAlias(of: newIndex)
            loader.forgettingChangesRecordedFor = catchUp
            try await Self.step("registering the new index for catch-up") {
                try await retryingWhileBusy(client) { try await client.updateAliases([.add(index: newIndex, alias: catchUp)], timeout: $0) }
                try await pool.query("INSERT INTO index_targets (index_name) VALUES ($1)", [catchUp])
            }
            // No refreshes while loading (the bulk load is faster); one explicit refresh before the swap.
            try await Self.step("pausing refreshes") {
                try await retryingWhileBusy(client) { try await client.setRefreshInterval(newIndex, "-1", timeout: $0) }
            }
            logger.info("loading", metadata: ["es.index": "\(newIndex)", "reindex.orders": "\(total)"])
            let loadStarted = ContinuousClock.now
            let summary = try await Self.step("loading documents") {
                // Through the catch-up alias with `require_alias`: a bulk request still out when a failed
                // or stopped reindex deletes the index fails, instead of re-creating it.
                try await loader.load(into: catchUp, throughAlias: true, progress: { done in progress(done, total) }, refused: keep)
            }
            let loadTarget = FullLoader.Target(index: catchUp, throughAlias: true)
            let catchUpStarted = ContinuousClock.now
            let caughtUp = try await Self.step("catching up with the changes made while loading") {
                try await loader.catchUp(recordedFor: catchUp, into: loadTarget, until: .fewerThan(options.batchSize),
                                         progress: logCatchUp(afterSwap: false), refused: keep)
            }
            let catchUpEnded = ContinuousClock.now
            let rejected = summary.rejected + caughtUp.rejected
            guard rejected == 0 else { throw ReindexError.rejectedDocuments(rejected) }
            try await Self.step("refreshing \(newIndex)") {
                try await retryingWhileBusy(client) {
                    try await client.setRefreshInterval(newIndex, Self.refreshInterval(in: mapping), timeout: $0)
                }
                // The longest wait at once: a refresh that timed out is still under way, and one sent
                // again queues behind it (a soak's reindex failed here after 30-s attempts).
                try await retryingWhileBusy(client, longestWaitFirst: true) { try await client.refresh(newIndex, timeout: $0) }
            }
            try await Self.step("confirming the reindex lock") {
                guard try await lock.query(AdvisoryLock.reindex.isHeldHereSQL).first?.string(0) == "t" else {
                    throw LockLost()
                }
            }
            try await Self.step("swapping the alias") { try await swapAlias(from: old, to: newIndex, catchUp: catchUp) }
            // From here on the alias points at the new index and live indexers write there.
            try await unregister(catchUp)
            let afterSwap = try await catchUpAfterSwap(loader, registration: catchUp, newIndex: newIndex)
            if !options.keepOld {
                for index in old { _ = try? await client.deleteIndex(index) }
            }
            return Report(newIndex: newIndex, oldIndices: old, documents: summary.documents,
                          caughtUp: caughtUp.documents + afterSwap.documents, rejected: afterSwap.rejected, dryRun: false,
                          yielded: liveFirst.totalPause, loading: catchUpStarted - loadStarted, catchingUp: catchUpEnded - catchUpStarted)
        } catch {
            // Leave everything as it was: stop live indexers from writing to the new index, then
            // drop it. Also after a cancellation (the operator's Ctrl-C, a job runner's SIGTERM).
            await Self.evenIfCancelled { [self] in
                let catchUp = layout.catchUpAlias(of: newIndex)
                _ = try? await unregister(catchUp)
                _ = try? await ReindexChanges.removeAll(for: catchUp, from: pool)
                await removeUnlessLive(newIndex)
            }
            throw error
        }
    }

    /// Copies what the live indexers recorded until the registration ended: changes they wrote
    /// into the old index just before the swap. Nothing records for it any more, so this ends. A
    /// failure here cannot undo the swap: it says so, and the old index is kept.
    private func catchUpAfterSwap(_ loader: FullLoader, registration: String, newIndex: String) async throws -> (documents: Int, rejected: [String]) {
        var rejected: [String] = []
        do {
            let summary = try await loader.catchUp(recordedFor: registration, into: .init(index: layout.alias, throughAlias: true), until: .empty,
                                                   progress: logCatchUp(afterSwap: true)) { refused in
                try await keep(refused)
                rejected += refused.map(\.orderID)
            }
            // A claim that began before the registration ended may record after the read above found
            // nothing: its documents went to the alias, which was the new index by then.
            try await ReindexChanges.removeAll(for: registration, from: pool)
            return (summary.documents, rejected)
        } catch {
            throw ReindexError.incompleteAfterSwap(newIndex: newIndex, underlying: "\(error)")
        }
    }

    /// One log line per read of recorded changes (info; `order-admin` logs at info by default), or
    /// nothing (and no count of the changes left) when info lines are not logged.
    private func logCatchUp(afterSwap: Bool) -> ((Int, Int) -> Void)? {
        guard logger.logLevel <= .info else { return nil }
        return { [logger] copied, left in
            logger.info(afterSwap ? "catching up after the swap" : "catching up with the changes made while loading",
                        metadata: ["reindex.copied": "\(copied)", "reindex.changes_left": "\(left)"])
        }
    }

    /// How long the clean-up of a failed or stopped reindex waits for a busy cluster, per call: a job
    /// runner that sent SIGTERM gives a minute at most before SIGKILL (the soak does).
    static let cleanUpPatience: Duration = .seconds(15)

    /// Deletes `newIndex` unless the alias points at it. A busy cluster is asked again for up to
    /// `cleanUpPatience`: a soak's stopped reindex, which tried once, left its 94,000-document index
    /// behind when osmem-server was slow to answer. What still fails is named in the log; the index
    /// still carries its catch-up alias, by which the next reindex finds and removes it
    /// (`removeAbandoned`).
    private func removeUnlessLive(_ newIndex: String) async {
        do {
            let live = try await retryingWhileBusy(client, for: Self.cleanUpPatience) {
                try await client.aliasTargets(layout.alias, timeout: $0)
            }
            guard !live.contains(newIndex) else { return }
            _ = try await retryingWhileBusy(client, for: Self.cleanUpPatience) { try await client.deleteIndex(newIndex, timeout: $0) }
        } catch {
            logger.error("could not remove the new index; the next reindex removes it", metadata: ["es.index": "\(newIndex)", "error": "\(error)"])
        }
    }

    /// Points the alias at `newIndex` and removes the catch-up alias in one atomic `_aliases` call.
    ///
    /// A busy cluster can apply the call and still lose its answer (a timeout, a dropped
    /// connection), and a blind repeat of an applied swap is not a no-op: its `remove … must_exist`
    /// actions fail. So after any failure the alias is read back: already on `newIndex` means the
    /// swap took effect; still on `old` after a transient failure means it did not, and it is tried
    /// again; anything else (someone else moved the alias) fails the reindex.
    private func swapAlias(from old: [String], to newIndex: String, catchUp: String) async throws {
        let actions: [ElasticsearchClient.AliasAction] = old.map { .remove(index: $0, alias: layout.alias) }
            + [.add(index: newIndex, alias: layout.alias), .remove(index: newIndex, alias: catchUp)]
        try await retryingWhileBusy(client) { timeout in
            do {
                try await client.updateAliases(actions, timeout: timeout)
            } catch {
                let now = try await retryingWhileBusy(client) { try await client.aliasTargets(layout.alias, timeout: $0) }
                if now == [newIndex] {
                    logger.warning("the alias swap's answer was lost, but the swap took effect", metadata: ["es.error": "\(error)"])
                    return
                }
                guard now == old else { throw AliasMoved(expected: old, found: now, underlying: "\(error)") }
                throw error  // unchanged: retried while transient
            }
        }
    }

    struct AliasMoved: Error, CustomStringConvertible {
        let expected: [String], found: [String], underlying: String
        var description: String {
            "the alias points at \(found), not at \(expected) as when the reindex began (\(underlying)); left as it is"
        }
    }

    struct LockLost: Error, CustomStringConvertible {
        var description: String {
            "the PostgreSQL session holding the reindex lock ended (a restart?); live changes may have missed the new index"
        }
    }

    /// Registrations left by a reindex that was killed (this one holds the lock, so whoever made
    /// them is gone), and the indexes behind them unless the alias points there; then any other
    /// index that still carries a catch-up alias, which only a reindex that stopped without being
    /// able to delete it leaves (its registration is gone, its alias is not: the swap removes it).
    private func removeAbandoned() async throws {
        let live = try await retryingWhileBusy(client) { try await client.aliasTargets(layout.alias, timeout: $0) }
        for row in try await pool.query("SELECT index_name FROM index_targets") {
            let catchUp = row.string(0)!
            let indexes = try await retryingWhileBusy(client) { try await client.aliasTargets(catchUp, timeout: $0) }
            try await removeAbandoned(indexes, live: live, leftBy: catchUp)
            try await unregister(catchUp)
        }
        try await ReindexChanges.removeAll(from: pool)
        let carrying = try await retryingWhileBusy(client) { try await client.aliasTargets(layout.catchUpAliasPattern, timeout: $0) }
        try await removeAbandoned(carrying, live: live, leftBy: layout.catchUpAliasPattern)
    }

    private func removeAbandoned(_ indexes: [String], live: [String], leftBy catchUp: String) async throws {
        for index in indexes where !live.contains(index) {
            _ = try await retryingWhileBusy(client) { try await client.deleteIndex(index, timeout: $0) }
            logger.warning("removed an interrupted reindex's index", metadata: ["es.alias": "\(catchUp)", "es.index": "\(index)"])
        }
    }

    /// The mapping's own `settings.refresh_interval`, restored after the load.
    static func refreshInterval(in mapping: [UInt8]) -> String {
        (try? JSONParser.parse(mapping))?["settings"]?["refresh_interval"]?.stringValue ?? "1s"
    }

    /// Removes the catch-up registration (indexers stop writing to that alias).
    private func unregister(_ catchUpAlias: String) async throws {
        try await pool.query("DELETE FROM index_targets WHERE index_name = $1", [catchUpAlias])
    }

    /// Keeps what the new index refused as dead letters, with the reason.
    private func keep(_ refused: [FullLoader.Refused]) async throws {
        let refusals = refused.map { r in
            DeadLetters.Refusal(aggregateType: "order", aggregateID: r.orderID, aggregateVersion: r.orderVersion,
                                eventType: "Reindex", document: r.document, occurredAtMs: r.updatedAtMs,
                                errorStatus: r.status, errorType: r.errorType)
        }
        try await pool.transaction { try DeadLetters.record(refusals, on: $0) }
        logger.error("documents refused by the new index; kept as dead letters", metadata: ["reindex.refused": "\(refused.count)"])
    }

    /// Runs clean-up in a task of its own, which a cancellation of the reindex does not reach (a
    /// cancelled task's cluster calls would fail at once).
    private static func evenIfCancelled(_ body: @escaping @Sendable () async -> Void) async {
        await Task { await body() }.value
    }

    private static func step<T>(_ name: String, _ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as ReindexError { throw error } catch {
            if Task.isCancelled { throw ReindexError.stopped(step: name) }
            throw ReindexError.failed(step: name, underlying: "\(error)")
        }
    }
}
