import Foundation
import LibPQClient
import ReadModel

/// `rebuild`: the indexer's self-heal rebuild (guarantee 5) of a search server that came back
/// empty, against the same documents posted straight to `_bulk`, on an otherwise idle machine;
/// and what the index it leaves costs to update, since the events that waited during the outage
/// arrive right after it as updates of orders spread over the whole index.
///
/// The soak measures the same rebuild under its command load and faults, once per run and with
/// that run's noise; this isolates the rebuild itself, and compares in one run the request sizes
/// it can use (`INDEXER_REBUILD_BATCH_SIZE`) with the baseline at the same sizes. Rounds
/// alternate every variant, so that a slow minute of the shared machine does not land on one side.
struct RebuildBenchmark {
    let benchmarks: IndexBenchmarks
    let rounds: Int

    /// Documents per request: osmem-server's fastest, and the rebuild's (the soak's baseline, `RawBulkBaseline`).
    static let sizes = [RawBulkBaseline.fastestDocumentsPerRequest, BulkSizing.documentsPerLoadRequest]
    /// After each load, requests of 100 orders chosen at random, timed one after another: the
    /// index a load of 1000-document requests leaves takes about a minute for each.
    static let updateProbe = (size: 100, samples: 2)
    /// How long one rebuild may take before the run fails.
    static let patience: Duration = .seconds(1800)

    struct Totals {
        var seconds = 0.0
        var updateSeconds = 0.0
        var retries = 0
    }

    func run() async throws -> BenchReport {
        try await benchmarks.env.withFreshDatabase("bench_rebuild") { url, pool in
            try await DataSet(orders: benchmarks.orders).load(into: pool, outbox: false)
            var raw: [Int: Totals] = [:], rebuilt: [Int: Totals] = [:]
            for round in 1...rounds {
                for size in Self.sizes {
                    let run = try await postRaw(size, pool: pool)
                    raw[size, default: Totals()].add(run)
                    benchmarks.logger.info("raw _bulk", metadata: ["bench.size": "\(size)", "bench.docs_per_s": "\(Int(Double(benchmarks.orders) / run.seconds))",
                                                                 "bench.update_s": "\(run.updateSeconds)"])
                }
                for size in Self.sizes {
                    let run = try await rebuild(size, databaseURL: url, pool: pool)
                    rebuilt[size, default: Totals()].add(run)
                    benchmarks.logger.info("rebuild", metadata: ["bench.size": "\(size)", "bench.docs_per_s": "\(Int(Double(benchmarks.orders) / run.seconds))",
                                                               "bench.update_s": "\(run.updateSeconds)", "bench.retries": "\(run.retries)"])
                }
                benchmarks.logger.info("rebuild round done", metadata: ["bench.round": "\(round)"])
            }
            return report(raw: raw, rebuilt: rebuilt)
        }
    }

    private func report(raw: [Int: Totals], rebuilt: [Int: Totals]) -> BenchReport {
        var report = BenchReport("rebuild")
        let documents = Double(benchmarks.orders * rounds), probes = Double(rounds * Self.updateProbe.samples)
        let baseline = documents / (raw[RawBulkBaseline.documentsPerRequest]?.seconds ?? .infinity)
        let fastest = documents / (raw[RawBulkBaseline.fastestDocumentsPerRequest]?.seconds ?? .infinity)
        report.add("orders", benchmarks.orders)
        report.add("rounds", rounds)
        for size in Self.sizes {
            let run = raw[size] ?? Totals(seconds: .infinity)
            report.add("raw_bulk_\(size)docs_docs_per_s", documents / run.seconds, digits: 0)
            report.add("raw_bulk_\(size)docs_then_update_\(Self.updateProbe.size)_s", run.updateSeconds / probes, digits: 3)
        }
        for size in Self.sizes {
            let run = rebuilt[size] ?? Totals(seconds: .infinity)
            report.add("rebuild_\(size)docs_docs_per_s", documents / run.seconds, digits: 0)
            report.add("rebuild_\(size)docs_ratio_vs_raw_bulk", documents / run.seconds / baseline)
            report.add("rebuild_\(size)docs_ratio_vs_raw_bulk_\(RawBulkBaseline.fastestDocumentsPerRequest)docs", documents / run.seconds / fastest)
            report.add("rebuild_\(size)docs_then_update_\(Self.updateProbe.size)_s", run.updateSeconds / probes, digits: 3)
            report.add("rebuild_\(size)docs_bulk_retries", run.retries)
        }
        let shipped = documents / (rebuilt[BulkSizing.documentsPerLoadRequest]?.seconds ?? .infinity)
        report.target("rebuild ≥ 0.8× raw _bulk (\(RawBulkBaseline.documentsPerRequest) a request)", shipped / baseline >= 0.8)
        return report
    }

    /// The baseline: the documents, built beforehand, into a fresh server with its alias; then the update probe.
    private func postRaw(_ size: Int, pool: PostgresPool) async throws -> Totals {
        let bodies = try await RawBulkShapes.bodies(pool: pool, documentsPerRequest: size)
        let osmem = try await benchmarks.env.startOsmem()
        defer { osmem.stop() }
        try await benchmarks.createAlias(osmem.url)
        let seconds = try await benchmarks.postRaw(bodies, to: osmem.url, concurrency: 1)
        return Totals(seconds: seconds, updateSeconds: try await updateProbe(pool: pool, url: osmem.url))
    }

    /// One indexer against a fresh server without the alias, timed from the rebuild's registration
    /// to its end (`RebuildWatch`): the indexer's start-up and its check interval are not counted.
    /// Its retried bulk requests are counted from its log. Then the update probe.
    private func rebuild(_ size: Int, databaseURL: String, pool: PostgresPool) async throws -> Totals {
        let osmem = try await benchmarks.env.startOsmem()
        defer { osmem.stop() }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("order-bench-rebuild-\(getpid()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let indexer = try benchmarks.env.launch("order-indexer", environment: [
            "DATABASE_URL": databaseURL, "ELASTICSEARCH_URL": osmem.url, "ORDERS_INDEX": IndexBenchmarks.alias,
            "INDEXER_METRICS_ADDR": "127.0.0.1:\(freePort())", "LOG_LEVEL": "warning", "INDEXER_REBUILD_BATCH_SIZE": String(size),
        ], outputPath: log)
        defer { indexer.stop() }
        let watch = try await benchmarks.env.withElasticsearch(osmem.url) { client in
            try await RebuildWatch(pool: pool, client: client, alias: IndexBenchmarks.alias).run(patience: Self.patience)
        }
        let indexed = try await benchmarks.env.withElasticsearch(osmem.url) { try await $0.count(IndexBenchmarks.alias) }
        guard indexed == benchmarks.orders else { throw BenchError("the rebuild indexed \(indexed) of \(benchmarks.orders) orders") }
        let retries = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
            .filter { $0.contains("retrying") || $0.contains("to retry") }.count
        return Totals(seconds: (watch.finished - watch.started).seconds, updateSeconds: try await updateProbe(pool: pool, url: osmem.url),
                      retries: retries)
    }

    /// Seconds of all the probe's requests (versions far above any load's, so every one applies).
    private func updateProbe(pool: PostgresPool, url: String) async throws -> Double {
        let bodies = try await ServerUpdateDecay.randomUpdateBodies(pool: pool, size: Self.updateProbe.size,
                                                                    samples: Self.updateProbe.samples, newerThan: 1000)
        return try await benchmarks.postRaw(bodies, to: url, concurrency: 1)
    }
}

extension RebuildBenchmark.Totals {
    mutating func add(_ other: Self) {
        seconds += other.seconds
        updateSeconds += other.updateSeconds
        retries += other.retries
    }
}
