import ElasticsearchClient
import Foundation
import LibPQClient
import Logging
import OrderAdmin
import ReadModel
import ServiceTesting

/// `scripts/soak`: minutes of mixed commands against three indexers while faults come and go,
/// then a wait for the read side to become exact and a comparison of every order.
public struct Soak: Sendable {
    public struct Options: Sendable {
        public var minutes = 10.0
        public var rate = 100
        public var bigCustomerOrders = 20_000
        public var bigCustomerRenames = 3
        public var indexers = 3
        /// The faults injected, the first time in this order (`--faults`): a targeted soak repeats
        /// one sequence (say an outage followed by a reindex) without waiting through the others.
        public var faults = SoakChaos.Fault.allCases
        public init() {}
    }

    static let bigCustomer = "cus_big"

    let env: BenchEnvironment
    let options: Options
    let logger: Logger

    public init(env: BenchEnvironment, options: Options, logger: Logger) {
        self.env = env
        self.options = options
        self.logger = logger
    }

    public func run() async throws -> BenchReport {
        let (url, pool) = try await env.freshDatabase("soak")
        try await seedBigCustomer(pool)
        let stack = try await SoakStack(env: env, databaseURL: url, indexers: options.indexers, logger: logger)
        try await stack.start()
        logger.info("indexing the big customer's orders before the soak starts")
        _ = try await waitUntilExact(pool: pool, stack: stack, timeout: .seconds(1800))

        let total = Duration.seconds(options.minutes * 60)
        let deadline = ContinuousClock.now + total
        let load = SoakLoad(base: stack.writeAPIURL, authorization: try await env.staffAuthorization(), bigCustomer: Self.bigCustomer,
                            logger: logger)
        let chaos = SoakChaos(stack: stack, pool: pool, faults: options.faults, restartPostgres: ProcessInfo.processInfo.environment["ORDER_BENCH_PG_RESTART"],
                              outage: min(.seconds(Double.random(in: 60...180)), total / 4), logger: logger)
        let probe = SoakProbe(stack: stack, pool: pool, load: load, logger: logger)
        let probing = Task { await probe.run(until: deadline + .seconds(3600)) }
        // Pauses sized so that every kind of fault fits into the soak at least once.
        let slot = total.seconds / Double(max(options.faults.count, 1) * 2)
        await withDiscardingTaskGroup { group in
            group.addTask { await load.run(rate: options.rate, until: deadline, bigRenames: options.bigCustomerRenames) }
            group.addTask { await chaos.run(until: deadline, pause: (slot * 0.5)...slot) }
        }
        logger.info("soak over; waiting for the read side to become exact")
        let exactAt = try await waitUntilExact(pool: pool, stack: stack, timeout: .seconds(600))
        probing.cancel()
        _ = await probing.value
        let final = try await finalComparison(pool: pool, stack: stack)
        await stack.stopAll()
        var idleRaw: Double?
        if chaos.result.rebuildDocsPerSecond != nil {
            do { idleRaw = try await RawBulkBaseline(env: env, pool: pool, logger: logger).measure(.idle) } catch {
                logger.error("the idle raw _bulk baseline failed", metadata: ["error": "\(error)"])
            }
        }
        await pool.shutdown()
        return report(load: load.snapshot, chaos: chaos.result, probe: probe.result, final: final, exactAt: exactAt, loadEnded: deadline, idleRaw: idleRaw)
    }

    /// One customer with many orders (renamed during the soak), with an OrderPlaced event each.
    private func seedBigCustomer(_ pool: PostgresPool) async throws {
        let orderID = "'ord_big_' || lpad(g::text, 7, '0')"
        try await pool.transaction { [options] connection in
            try connection.query("""
                INSERT INTO customers (id, version, name, email, country, created_at, updated_at)
                VALUES ($1, 1, 'Big Customer', 'big@example.com', 'DE', now(), now())
                """, [Self.bigCustomer])
            try connection.query("""
                INSERT INTO orders (id, version, status, customer_id, currency, total, ship_line1, ship_city, ship_postal_code, ship_country,
                                    created_at, updated_at)
                SELECT \(orderID), 1, 'pending', $2, 'EUR', 10.00, 'Main Street 1', 'Berlin', '10115', 'DE', now(), now()
                FROM generate_series(1, $1) g
                """, [options.bigCustomerOrders, Self.bigCustomer])
            try connection.query("""
                INSERT INTO order_items (order_id, position, sku, name, quantity, unit_price)
                SELECT \(orderID), 0, 'SKU-1', 'Blue Coffee Mug', 1, 10.00 FROM generate_series(1, $1) g
                """, [options.bigCustomerOrders])
            try connection.query("""
                INSERT INTO outbox (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at)
                SELECT 'order', \(orderID), 1, 'OrderPlaced', '{}', now() FROM generate_series(1, $1) g
                """, [options.bigCustomerOrders])
        }
    }

    /// Polls until the outbox is empty and the index matches PostgreSQL exactly; when that happened.
    /// What it is still waiting for is logged every 30 s, so a soak that never converges says why.
    private func waitUntilExact(pool: PostgresPool, stack: SoakStack, timeout: Duration) async throws -> ContinuousClock.Instant? {
        let started = ContinuousClock.now
        var lastLog = started
        while ContinuousClock.now - started < timeout {
            let state: String
            do {
                let outbox = try await pool.query("SELECT count(*), COALESCE(max(attempts), 0) FROM outbox").first
                if outbox?.int(0) == 0 {
                    let report = try await compare(pool: pool, stack: stack)
                    if report.drifted == 0 && report.lagging == 0 { return .now }
                    state = "missing \(report.missing), stale \(report.stale), extra \(report.extra), lagging \(report.lagging)"
                } else {
                    state = "outbox \(outbox?.int(0) ?? -1) events, most attempts \(outbox?.int(1) ?? -1)"
                }
            } catch {
                state = "\(error)"
            }
            if ContinuousClock.now - lastLog >= .seconds(30) {
                lastLog = .now
                logger.warning("the read side is not exact yet", metadata: ["soak.waiting": "\(state)"])
            }
            try await Task.sleep(for: .seconds(1))
        }
        return nil
    }

    /// The final comparison, tried again for up to 10 minutes while a saturated search server
    /// times out: the soak's report is worth more than its first attempt.
    private func finalComparison(pool: PostgresPool, stack: SoakStack) async throws -> DriftVerifier.Report {
        let started = ContinuousClock.now
        while true {
            do { return try await compare(pool: pool, stack: stack) } catch where ContinuousClock.now - started < .seconds(600) {
                logger.warning("final comparison failed; trying again in 30 s", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(30))
            }
        }
    }

    /// Every order's PostgreSQL version against its search document.
    private func compare(pool: PostgresPool, stack: SoakStack) async throws -> DriftVerifier.Report {
        let client = ElasticsearchClient(configuration: .init(baseURL: stack.osmemURL))
        do {
            let report = try await DriftVerifier(pool: pool, client: client, layout: IndexLayout(alias: stack.alias), logger: logger).run(repair: false)
            await client.shutdown()
            return report
        } catch {
            await client.shutdown()
            throw error
        }
    }

    private func report(load: SoakLoad.Counts, chaos: SoakChaos.Outcome, probe: SoakProbe.Readings, final: DriftVerifier.Report,
                        exactAt: ContinuousClock.Instant?, loadEnded: ContinuousClock.Instant, idleRaw: Double?) -> BenchReport {
        var report = BenchReport("soak")
        // Exactness can be seen only once commands stop: under the load some are always on their way.
        // So recovery counts from the last fault's end or the load's, whichever came later; before,
        // it counted from the fault alone, and a fault that ended two minutes before the load did
        // had those two minutes of commands counted as time to recover (7.5-57 s in 30-minute soaks).
        let recovered = max(chaos.lastFaultEnded, loadEnded)
        let recovery = exactAt.map { ($0 - recovered).seconds } ?? -1
        let backwards = final.stale + probe.backwards
        let rebuildRatio = both(chaos.rebuildDocsPerSecond, chaos.rawBulkUnderLoadDocsPerSecond).map { $0 / max($1, 0.001) }
        let idleRatio = both(chaos.rebuildDocsPerSecond, idleRaw).map { $0 / max($1, 0.001) }
        let fastestRatio = both(chaos.rebuildDocsPerSecond, chaos.fastestRawBulkUnderLoadDocsPerSecond).map { $0 / max($1, 0.001) }
        report.add("minutes", options.minutes, digits: 1)
        report.add("rate", options.rate)
        report.add("commands", load.commands)
        report.add("acknowledged", load.acknowledged)
        report.add("unavailable_503", load.unavailable)
        report.add("refused_409_422", load.refused)
        report.add("skipped", load.skipped)
        report.add("lost", final.missing)
        report.add("backwards", backwards)
        report.add("drift", final.drifted)
        report.add("max_xact_age_s", probe.maxTransactionAge)
        report.add("indexer_rss_growth", probe.rssGrowth)
        if let worst = probe.worstRSS {
            report.add("indexer_rss_worst", String(format: "%.0f MB then %.0f MB over %.0f s", worst.earlyMB, worst.lateMB, worst.seconds))
        }
        if let median = probe.worstMedianRSS {
            report.add("indexer_rss_median_growth", median.growth)
            report.add("indexer_rss_median_worst", String(format: "%.0f MB then %.0f MB over %.0f s", median.earlyMB, median.lateMB, median.seconds))
        }
        report.add("non_503_errors", load.errors)
        report.add("recovery_s", recovery)
        report.add("last_fault_end_before_load_end_s", (loadEnded - chaos.lastFaultEnded).seconds, digits: 0)
        if let last = chaos.lastFault { report.add("last_fault", last.rawValue) }
        if let rebuildRatio { report.add("rebuild_ratio_vs_raw_bulk", rebuildRatio) }
        if let idleRatio { report.add("rebuild_ratio_vs_idle_raw_bulk", idleRatio) }
        if let fastestRatio { report.add("rebuild_ratio_vs_raw_bulk_\(RawBulkBaseline.fastestDocumentsPerRequest)docs", fastestRatio) }
        if let rebuild = chaos.rebuildDocsPerSecond { report.add("rebuild_docs_per_s", rebuild, digits: 0) }
        if let raw = chaos.rawBulkUnderLoadDocsPerSecond { report.add("raw_bulk_under_load_docs_per_s", raw, digits: 0) }
        if let idleRaw { report.add("raw_bulk_idle_docs_per_s", idleRaw, digits: 0) }
        if let fastest = chaos.fastestRawBulkUnderLoadDocsPerSecond {
            report.add("raw_bulk_\(RawBulkBaseline.fastestDocumentsPerRequest)docs_under_load_docs_per_s", fastest, digits: 0)
        }
        if let detect = chaos.rebuildDetectSeconds { report.add("rebuild_detect_s", detect) }
        for fault in options.faults { report.add("faults_\(fault.rawValue)", chaos.faults[fault.rawValue] ?? 0) }
        report.add("sigterm_failures", chaos.sigtermFailures)
        report.add("verify_failures", chaos.verifyFailures)
        report.add("reindex_failures", chaos.reindexFailures)
        if let longest = chaos.reindexSeconds.max() { report.add("reindex_s", longest, digits: 0) }
        for (command, words) in chaos.adminLastWords.sorted(by: { $0.key < $1.key }) { report.add("\(command)_last_output", words) }
        for (command, words) in chaos.adminSummaries.sorted(by: { $0.key < $1.key }) { report.add("\(command)_summary", words) }
        report.add("postgres_restart_failures", chaos.postgresRestartFailures)
        report.target("lost = 0", final.missing == 0, essential: true)
        report.target("backwards = 0", backwards == 0, essential: true)
        report.target("drift = 0", final.drifted == 0 && exactAt != nil, essential: true)
        report.target("max_xact_age_s ≤ 60", probe.maxTransactionAge <= 60, essential: true)
        report.target("non_503_errors = 0", load.errors == 0, essential: true)
        report.target("SIGTERM: exit 0 within 10 s; verify --repair and reindex succeed",
                      chaos.sigtermFailures + chaos.verifyFailures + chaos.reindexFailures == 0, essential: true)
        report.target("indexer_rss_growth ≤ 1.2", probe.rssGrowth <= 1.2)
        // The 30 s target is for a fault that leaves the index in place. After osmem-server came
        // back empty, the backlog of the outage and of the rebuild drains into a new index afterwards,
        // at whatever pace the server takes updates: reported, not a target.
        if chaos.lastFault == .searchServerOutage {
            report.add("recovery_target", "not applicable: the last fault emptied the search server")
        } else {
            report.target("recovery_s ≤ 30", recovery >= 0 && recovery <= 30)
        }
        if let rebuildRatio { report.target("rebuild ≥ 0.8× raw _bulk", rebuildRatio >= 0.8) }
        return report
    }
}

private func both<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}
