import ElasticsearchClient
import Foundation
import JSONSupport
import Logging
import LibPQClient
import ReadModel
import ServiceTesting

/// `index`, `index --indexers K`, `reindex`: draining and rebuilding, each
/// against the same documents posted straight to `_bulk`.
public struct IndexBenchmarks: Sendable {
    let env: BenchEnvironment
    let orders: Int
    let logger: Logger

    public init(env: BenchEnvironment, orders: Int, logger: Logger) {
        self.env = env
        self.orders = orders
        self.logger = logger
    }

    static let alias = "orders"

    /// Posts bodies with `concurrency` connections; returns seconds.
    func postRaw(_ bodies: [[UInt8]], to url: String, concurrency: Int) async throws -> Double {
        // A request of random updates on a large osmem index is answered after tens of seconds with
        // nothing sent meanwhile, which the default 20 s low-speed limit would take for a dead peer.
        let configuration = { var c = CurlHTTPClient.Configuration(); c.threads = concurrency; c.requestTimeout = .seconds(300); c.lowSpeedTime = .seconds(300); return c }()
        return try await withScoped({ CurlHTTPClient(configuration: configuration) }, stop: { await $0.shutdown() }) { http in
            try await postRaw(bodies, to: url, concurrency: concurrency, through: http)
        }
    }

    private func postRaw(_ bodies: [[UInt8]], to url: String, concurrency: Int, through http: CurlHTTPClient) async throws -> Double {
        let next = Tally()
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    while let i = next.take(below: bodies.count) {
                        let response = try await http.execute(method: "POST", url: url + "/_bulk?filter_path=errors,items.*.error.type,items.*.status",
                                                              headers: [("Content-Type", "application/x-ndjson")], body: bodies[i])
                        guard response.status == 200 else { throw BenchError("raw _bulk answered \(response.status)") }
                    }
                }
            }
            try await group.waitForAll()
        }
        return (ContinuousClock.now - start).seconds
    }

    func createAlias(_ url: String) async throws {
        _ = try await env.withElasticsearch(url) { try await IndexLayout(alias: Self.alias).ensureAlias($0) }
    }

    func refill(_ pool: PostgresPool) async throws {
        try await pool.query("""
            INSERT INTO outbox (aggregate_type, aggregate_id, aggregate_version, event_type, payload, occurred_at)
            SELECT 'order', id, version, 'OrderPlaced', '{}', now() FROM orders ORDER BY id
            """)
    }

    struct Drain {
        var seconds: Double
        var cpuSeconds: Double
        var peakRSS: Double
    }

    /// Runs `count` indexer processes until the outbox is empty. With
    /// `backlogAfterStart`, the processes start on an empty outbox and the clock
    /// starts when the backlog is committed, so start-up time is not measured.
    func drain(pool: PostgresPool, databaseURL: String, elasticsearchURL: String, count: Int = 1, workers: Int = 2,
               backlogAfterStart: Bool = false) async throws -> Drain {
        var start = ContinuousClock.now
        var ports: [Int] = []
        let children = try (0..<count).map { _ in
            let port = freePort()
            ports.append(port)
            return try env.launch("order-indexer", environment: [
                "DATABASE_URL": databaseURL, "ELASTICSEARCH_URL": elasticsearchURL, "ORDERS_INDEX": Self.alias,
                "INDEXER_METRICS_ADDR": "127.0.0.1:\(port)", "INDEXER_WORKERS": String(workers), "LOG_LEVEL": "error",
            ])
        }
        defer { children.forEach { $0.stop() } }
        if backlogAfterStart {
            for port in ports { try await waitForHTTP("http://127.0.0.1:\(port)/health") }
            try await refill(pool)
            start = ContinuousClock.now
        }
        while try await !BenchEnvironment.outboxIsEmpty(pool) {
            guard children.allSatisfy({ $0.process.isRunning }) else { throw BenchError("an indexer exited during the drain") }
            try await Task.sleep(for: .milliseconds(50))
        }
        let seconds = (ContinuousClock.now - start).seconds
        let cpu = children.map(\.cpuSeconds).reduce(0, +)
        let rss = children.map(\.peakRSSMegabytes).max() ?? 0
        return Drain(seconds: seconds, cpuSeconds: cpu, peakRSS: rss)
    }

    /// See `RebuildBenchmark`.
    public func rebuild(rounds: Int) async throws -> BenchReport {
        try await RebuildBenchmark(benchmarks: self, rounds: rounds).run()
    }

    /// See `ServerUpdateDecay`.
    public func serverUpdates(rounds: Int, changeContent: Bool) async throws -> BenchReport {
        try await ServerUpdateDecay(benchmarks: self).run(rounds: rounds, changeContent: changeContent)
    }

    public func index() async throws -> BenchReport {
        try await env.withFreshDatabase("bench_index") { try await index(url: $0, pool: $1) }
    }

    private func index(url: String, pool: PostgresPool) async throws -> BenchReport {
        var report = BenchReport("index")
        logger.info("generating \(orders) orders with an outbox backlog")
        try await DataSet(orders: orders).load(into: pool, outbox: true)

        // Baseline: the same documents straight to _bulk, in the server's best request shape.
        logger.info("posting the raw baselines")
        let raw = try await RawBulkShapes(benchmarks: self).measure(pool: pool, orders: orders)
        // The indexer draining the backlog into a fresh osmem.
        let measured: Drain
        do {
            let osmem = try await env.startOsmem()
            defer { osmem.stop() }
            try await createAlias(osmem.url)
            logger.info("draining the backlog with order-indexer")
            measured = try await drain(pool: pool, databaseURL: url, elasticsearchURL: osmem.url)
        }
        // The indexer's own ceiling: a sink that accepts everything at once.
        try await refill(pool)
        let sink = try await NullSink.start(alias: Self.alias, logger: logger)
        defer { sink.task.cancel() }
        logger.info("draining into the null sink")
        let ceiling = try await drain(pool: pool, databaseURL: url, elasticsearchURL: "http://127.0.0.1:\(sink.port)")

        let docsPerSecond = Double(orders) / measured.seconds
        let rawPerSecond = raw.best.1
        let sinkPerSecond = Double(orders) / ceiling.seconds
        let cpuPerDoc = measured.cpuSeconds / Double(orders) * 1e6
        report.add("orders", orders)
        report.add("docs_per_s", docsPerSecond, digits: 0)
        report.add("raw_bulk_docs_per_s", rawPerSecond, digits: 0)
        report.add("best_raw_shape", raw.best.0.description)
        for (shape, docsPerSecond) in raw.all { report.add(shape.key, docsPerSecond, digits: 0) }
        report.add("ratio_vs_raw_bulk", docsPerSecond / rawPerSecond)
        report.add("null_sink_docs_per_s", sinkPerSecond, digits: 0)
        report.add("ratio_vs_null_sink", docsPerSecond / sinkPerSecond)
        report.add("cpu_us_per_doc", cpuPerDoc, digits: 1)
        report.add("null_sink_cpu_us_per_doc", ceiling.cpuSeconds / Double(orders) * 1e6, digits: 1)
        report.add("peak_rss_mb", measured.peakRSS, digits: 1)
        report.add("lost", try await pool.query("SELECT count(*) FROM outbox").first?.int(0) ?? -1)
        report.target("throughput ≥ 0.9× raw _bulk", docsPerSecond / rawPerSecond >= 0.9)
        report.target("≤ 38 µs CPU per document", cpuPerDoc <= 38)
        report.target("peak RSS ≤ 100 MB", measured.peakRSS <= 100)
        return report
    }

    /// K indexer processes on one outbox against the null sink, versus one; the two alternate in
    /// `rounds` drains each and their times are summed: a single drain of 20,000 events takes well
    /// under a second into the null sink, short enough for one scheduling hiccup to move the ratio.
    public func scaling(indexers: Int, rounds: Int = 3) async throws -> BenchReport {
        try await env.withFreshDatabase("bench_scaling") { try await scaling(indexers: indexers, rounds: rounds, url: $0, pool: $1) }
    }

    private func scaling(indexers: Int, rounds: Int, url: String, pool: PostgresPool) async throws -> BenchReport {
        var report = BenchReport("index --indexers \(indexers)")
        try await DataSet(orders: orders).load(into: pool, outbox: false)
        let sink = try await NullSink.start(alias: Self.alias, logger: logger)
        defer { sink.task.cancel() }
        let sinkURL = "http://127.0.0.1:\(sink.port)"
        var one = 0.0, many = 0.0
        for _ in 0..<rounds {
            one += try await drain(pool: pool, databaseURL: url, elasticsearchURL: sinkURL, count: 1, workers: 1, backlogAfterStart: true).seconds
            many += try await drain(pool: pool, databaseURL: url, elasticsearchURL: sinkURL, count: indexers, workers: 1, backlogAfterStart: true).seconds
        }
        let ratio = one / many
        report.add("orders", orders)
        report.add("indexers", indexers)
        report.add("rounds", rounds)
        report.add("one_indexer_docs_per_s", Double(orders * rounds) / one, digits: 0)
        report.add("docs_per_s", Double(orders * rounds) / many, digits: 0)
        report.add("ratio_vs_one_indexer", ratio)
        report.add("lost", try await pool.query("SELECT count(*) FROM outbox").first?.int(0) ?? -1)
        report.target("\(indexers) indexers ≥ 1.8× one", ratio >= 1.8)
        return report
    }

    public func reindex() async throws -> BenchReport {
        var report = BenchReport("reindex")
        let small = max(1, orders / 10)
        let smallRun = try await reindexRun(orders: small, database: "bench_reindex_small", baseline: false)
        let fullRun = try await reindexRun(orders: orders, database: "bench_reindex", baseline: true)
        let docsPerSecond = Double(orders) / fullRun.seconds
        let rawPerSecond = Double(orders) / (fullRun.rawSeconds ?? .infinity)
        report.add("orders", orders)
        report.add("docs_per_s", docsPerSecond, digits: 0)
        report.add("raw_bulk_docs_per_s", rawPerSecond, digits: 0)
        if let best = fullRun.bestShape { report.add("best_raw_shape", best) }
        report.add("ratio_vs_raw_bulk", docsPerSecond / rawPerSecond)
        report.add("peak_rss_mb", fullRun.peakRSS, digits: 1)
        report.add("peak_rss_mb_at_tenth", smallRun.peakRSS, digits: 1)
        report.add("rss_growth", fullRun.peakRSS / smallRun.peakRSS)
        report.add("lost", fullRun.lost)
        report.target("reindex ≥ 0.8× raw _bulk", docsPerSecond / rawPerSecond >= 0.8)
        report.target("peak RSS at N ≤ 1.5× at N/10", fullRun.peakRSS / smallRun.peakRSS <= 1.5)
        return report
    }

    struct ReindexRun {
        var seconds: Double
        var rawSeconds: Double?
        var bestShape: String?
        var peakRSS: Double
        var lost: Int
    }

    func reindexRun(orders: Int, database: String, baseline: Bool) async throws -> ReindexRun {
        try await env.withFreshDatabase(database) { try await reindexRun(orders: orders, baseline: baseline, url: $0, pool: $1) }
    }

    private func reindexRun(orders: Int, baseline: Bool, url: String, pool: PostgresPool) async throws -> ReindexRun {
        try await DataSet(orders: orders).load(into: pool, outbox: false)
        var rawSeconds: Double?, bestShape: String?
        if baseline {
            let best = try await RawBulkShapes(benchmarks: self).measure(pool: pool, orders: orders).best
            (rawSeconds, bestShape) = (Double(orders) / best.1, best.0.description)
        }
        let osmem = try await env.startOsmem()
        defer { osmem.stop() }
        try await createAlias(osmem.url)
        let start = ContinuousClock.now
        let admin = try env.launch("order-admin", ["reindex"], environment: [
            "DATABASE_URL": url, "ELASTICSEARCH_URL": osmem.url, "ORDERS_INDEX": Self.alias, "LOG_LEVEL": "error",
        ])
        var peak = 0.0
        while admin.process.isRunning {
            peak = max(peak, admin.peakRSSMegabytes)
            try await Task.sleep(for: .milliseconds(20))
        }
        guard admin.wait() == 0 else { throw BenchError("order-admin reindex failed") }
        let seconds = (ContinuousClock.now - start).seconds
        let indexed = try await env.withElasticsearch(osmem.url) { try await $0.count(Self.alias) }
        return ReindexRun(seconds: seconds, rawSeconds: rawSeconds, bestShape: bestShape, peakRSS: peak, lost: orders - indexed)
    }
}
